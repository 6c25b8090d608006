"""Dapr for the roles whose EventBus goes through a sidecar (``sidecar: true``).

Two ways to run Dapr, chosen per render (``--dapr-mode``): ``auto`` takes what the
EventBuses say, as OpenFunction does, with the annotation
``openfunction.io/dapr-service-mode: standalone`` (proxy) or ``sidecar`` (the default).

- **sidecar**: the Dapr injector adds a daprd container to each such role's pod, asked
  for by the ``dapr.io/*`` annotations: ``enabled``, ``app-id`` (the role's object
  name), ``log-as-json``, and ``app-port``/``app-protocol`` only for a role that serves
  HTTP (fnevents subscribes over the sidecar's streaming gRPC API, so Dapr never has to
  call the app). ``dapr.io/config`` and any other ``dapr.io/*`` annotation on the
  EventBus are passed on. The bus's Component is rendered as a Dapr ``Component``
  object, scoped to those app ids.
- **proxy** (OpenFunction's "standalone" mode, its cold-start fix): one shared daprd
  Deployment and Service, ``fnevents-dapr-proxy``, in Dapr's self-hosted mode reading
  the Components from a ConfigMap (no injector, no control plane, so a pod starts
  without waiting for a sidecar). Roles reach it through ``DAPR_GRPC_ENDPOINT``.
  Components there resolve ``secretKeyRef`` only through a secret store Component of
  their own (``auth.secretStore``); Kubernetes Secrets are not read in this mode.
"""

from __future__ import annotations

from typing import Any

from events.app.render import names
from events.manifests.loader import Loaded

SERVICE_MODE = "openfunction.io/dapr-service-mode"
STANDALONE = "standalone"
DAPR_IMAGE = "daprio/daprd:1.16.0"
DAPR_HTTP_PORT = 3500
DAPR_USER = 65532  # the distroless "nonroot" user the daprd image runs as
MODES = ("auto", "sidecar", "proxy")


def mode_of(buses: list[Loaded], choice: str) -> str:
    """``sidecar`` or ``proxy``: ``choice`` unless ``auto``, then the EventBuses' annotation."""
    if choice != "auto":
        return choice
    asked = {bus.resource.metadata.annotations.get(SERVICE_MODE) for bus in buses}
    return "proxy" if STANDALONE in asked else "sidecar"


def sidecar_annotations(app_id: str, bus: Loaded, http_port: int | None) -> dict[str, str]:
    annotations = {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": app_id,
        "dapr.io/log-as-json": "true",
    }
    if http_port is not None:
        annotations["dapr.io/app-port"] = str(http_port)
        annotations["dapr.io/app-protocol"] = "http"
    for key, value in bus.resource.metadata.annotations.items():
        if key.startswith("dapr.io/") and key not in ("dapr.io/enabled", "dapr.io/app-id"):
            annotations[key] = value
    return annotations


def grpc_endpoint(mode: str, namespace: str) -> str:
    """Where a role finds Dapr: its own sidecar, or the shared proxy's Service."""
    if mode == "proxy":
        return names.dapr_proxy_endpoint(namespace)
    return f"127.0.0.1:{names.DAPR_GRPC_PORT}"


def component_object(component: Loaded, namespace: str, scopes: list[str]) -> dict[str, Any]:
    """A Dapr ``Component`` object for the cluster, as the manifest wrote it."""
    resource = component.resource
    spec = resource.spec.model_dump(exclude_defaults=True, exclude_none=True)
    spec.setdefault("version", resource.spec.version)
    document: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": component.name, "namespace": namespace},
        "spec": spec,
    }
    if resource.auth is not None:
        document["auth"] = resource.auth.model_dump()
    if scopes:
        document["scopes"] = sorted(scopes)
    return document
