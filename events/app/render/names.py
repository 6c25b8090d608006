"""Every name ``fnevents render`` gives a Kubernetes object, and the addresses built from
them, made here once: the objects, the chart's values and the rewritten manifests all
call these functions, so a Service and the URL a Trigger posts to cannot disagree.

Object names are DNS-1123 labels (at most 63 characters of ``a-z``, ``0-9`` and ``-``,
starting and ending with a letter or digit), which every kind rendered accepts (a
Service name must be a label, not just a subdomain). A name that does not fit is cut and
given a short hash of the whole, so two long names stay apart.
"""

from __future__ import annotations

import hashlib
import re

from events.app.roles import describe_roles
from events.manifests.loader import Loaded

PREFIX = "fnevents"
MANIFESTS = f"{PREFIX}-manifests"
SECRETS = f"{PREFIX}-secrets"
DAPR_PROXY = f"{PREFIX}-dapr-proxy"
DAPR_PROXY_COMPONENTS = f"{DAPR_PROXY}-components"
DAPR_GRPC_PORT = 50001
LABEL_LIMIT = 63
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str) -> str:
    """``text`` as a DNS-1123 label: lower-cased; when other characters had to become
    ``-`` or it is too long, cut and given a hash of ``text`` so names stay apart."""
    label = _NOT_LABEL.sub("-", text.lower()).strip("-")
    if label == text.lower() and len(label) <= LABEL_LIMIT:
        return label
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{label[: LABEL_LIMIT - 9].rstrip('-')}-{digest}"


def role_of(item: Loaded) -> str:
    """The ``--only`` value that runs ``item`` alone: ``KIND/NAMESPACE/NAME`` (the
    runtime's own spelling, from :func:`events.app.roles.describe_roles`)."""
    return describe_roles([item])[0]


def role_name(item: Loaded) -> str:
    """The role's name in objects and values, e.g. ``trigger-default-telemetry``."""
    return dns_label(role_of(item).replace("/", "-"))


def object_name(suffix: str) -> str:
    """The name of an object of one role (Deployment, Service, PDB, ScaledObject)."""
    return dns_label(f"{PREFIX}-{suffix}")


def role_object(item: Loaded) -> str:
    return object_name(role_name(item))


def service_host(name: str, namespace: str) -> str:
    """A Service's in-cluster host name; ``NAME.NS.svc`` resolves in any cluster domain."""
    return f"{name}.{namespace}.svc"


def function_url(function: Loaded, namespace: str, port: int) -> str:
    """Where other pods reach the sync Function ``function``: its Service's URL."""
    return f"http://{service_host(role_object(function), namespace)}:{port}/"


def dapr_proxy_endpoint(namespace: str) -> str:
    """``DAPR_GRPC_ENDPOINT`` of a role in proxy (standalone) mode."""
    return f"{service_host(DAPR_PROXY, namespace)}:{DAPR_GRPC_PORT}"


def config_key(path_parts: tuple[str, ...], used: set[str]) -> str:
    """A ConfigMap key for a file (keys are flat: ``[-._a-zA-Z0-9]``): its name, or with
    its parent directories joined by ``-`` in front when that name is taken."""
    for depth in range(1, len(path_parts) + 1):
        key = re.sub(r"[^-._a-zA-Z0-9]", "-", "-".join(path_parts[-depth:]))
        if key not in used:
            used.add(key)
            return key
    key = f"{len(used)}-{path_parts[-1]}"
    used.add(key)
    return key
