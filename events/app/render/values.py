"""``fnevents render --helm-values``: a values file for ``charts/fnevents`` in per-role mode.

The chart does not compute a name, a role or a scaler: it reads them from ``roles``
here, which come from the same :class:`~events.app.render.model.RolePlan` objects that
``fnevents render`` prints as Kubernetes objects. The manifests go in ``manifests.files``
exactly as they are in the rendered ConfigMap (sync Functions' ``url`` filled in), and
v1 Secrets in ``manifests.secretFiles``. Everything else keeps the chart's defaults.
"""

from __future__ import annotations

from typing import Any

from events.app.render import dapr, names
from events.app.render.model import Rendering, RolePlan

HEADER = (
    "# Written by `fnevents render --helm-values`: per-role values for charts/fnevents.\n"
    "# Render again rather than editing roles by hand; they must match the manifests.\n"
)


def helm_values(rendering: Rendering) -> dict[str, Any]:
    repository, _, tag = rendering.options.image.rpartition(":")
    if not repository or "/" in tag:  # no tag, or a registry port
        repository, tag = rendering.options.image, ""
    return {
        # the chart's object names must be render's, whatever the release is called: the
        # manifests name Services (a sync Function's url) by them
        "fullnameOverride": names.PREFIX,
        "image": {"repository": repository, "tag": tag},
        "manifests": {
            "files": dict(sorted(rendering.files.manifests.items())),
            "secretFiles": dict(sorted(rendering.files.secrets.items())),
        },
        "mode": "per-role",
        "roles": [_role(role) for role in rendering.roles],
        "components": rendering.components,
        "daprProxy": {
            "enabled": rendering.dapr_proxy,
            "image": dapr.DAPR_IMAGE,
            "appId": names.DAPR_PROXY,
        },
        "keda": {"enabled": rendering.options.keda},
    }


def _role(role: RolePlan) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": role.name,
        "role": role.role,
        "replicas": role.replicas,
        "ports": role.ports,
        "env": role.env,
        "podAnnotations": role.pod_annotations,
    }
    if role.scaled_object is not None:
        values["scaledObject"] = role.scaled_object
    if role.single_replica_reason:
        values["singleReplicaReason"] = role.single_replica_reason
    return values
