"""The Kubernetes objects of a :class:`~events.app.render.model.Rendering`.

Per role: a Deployment running ``fnevents run -f /etc/fnevents/manifests --only ROLE``
(probes on the ops port: ``/readyz`` for readiness, ``/healthz`` for liveness;
Prometheus scrape annotations; requests and a memory limit; the restricted Pod Security
profile: non-root user 10001, read-only root filesystem with an emptyDir at ``/tmp``,
no privilege escalation, every capability dropped, seccomp ``RuntimeDefault``; no
service-account token, since fnevents never calls the Kubernetes API), a Service when it
serves HTTP, a PodDisruptionBudget when it may run more than one replica
(``maxUnavailable: 1``, so a drain never blocks on a single replica), and its
ScaledObject. Shared: the ``fnevents-manifests`` ConfigMap, the ``fnevents-secrets``
Secret, and in Dapr proxy mode the daprd Deployment, Service and Components ConfigMap.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from events.app.render import dapr, keda, names
from events.app.render.files import MANIFESTS_DIR, SECRETS_DIR
from events.app.render.model import Rendering, RolePlan

OPS_PORT = 9464
RUN_AS = 10001
RESOURCES = {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "512Mi"}}
APP = "app.kubernetes.io/name"
ROLE = "fnevents.dev/role"
#: On a Deployment that must not be scaled: why (a cron source, an MQTT bus, ...).
SINGLE_REPLICA = "fnevents.dev/single-replica-reason"
_COMPONENT_OF_KIND = {"EventSource": "source", "Trigger": "trigger", "Function": "function"}


def render_objects(rendering: Rendering) -> list[dict[str, Any]]:
    """Every object, shared ones first, then each role's, in role order."""
    ns = rendering.options.namespace
    objects = [config_map(names.MANIFESTS, ns, rendering.files.manifests)]
    if rendering.files.secrets:
        objects.append(secret(names.SECRETS, ns, rendering.files.secrets))
    if rendering.dapr_proxy:
        objects += dapr_proxy_objects(rendering)
    else:
        objects += rendering.components
    for role in rendering.roles:
        objects += role_objects(role, rendering)
    return objects


def role_objects(role: RolePlan, rendering: Rendering) -> list[dict[str, Any]]:
    ns, name = rendering.options.namespace, role.object_name
    objects = [deployment(role, rendering)]
    if role.ports:
        objects.append(service(name, ns, _labels(role), _selector(role), role.ports))
    if role.max_replicas > 1:
        objects.append(disruption_budget(name, ns, _labels(role), _selector(role)))
    if role.scaled_object is not None:
        objects.append(keda.scaled_object(name, ns, _labels(role), role.scaled_object))
    return objects


def _selector(role: RolePlan) -> dict[str, str]:
    return {APP: names.PREFIX, ROLE: role.name}


def _labels(role: RolePlan) -> dict[str, str]:
    return {**_selector(role), "app.kubernetes.io/component": _COMPONENT_OF_KIND[role.item.kind]}


def _metadata(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    metadata["labels"] = labels or {APP: names.PREFIX}
    return metadata


def config_map(name: str, namespace: str, files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, namespace),
        "data": dict(sorted(files.items())),
    }


def secret(name: str, namespace: str, files: dict[str, str]) -> dict[str, Any]:
    data = {key: base64.b64encode(text.encode()).decode() for key, text in sorted(files.items())}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(name, namespace),
        "type": "Opaque",
        "data": data,
    }


def deployment(role: RolePlan, rendering: Rendering) -> dict[str, Any]:
    args = ["run", "-f", MANIFESTS_DIR]
    if rendering.files.secrets:
        args += ["-f", SECRETS_DIR]
    args += ["--only", role.role, "--host", "0.0.0.0", "--port", str(OPS_PORT)]
    container = {
        "name": "fnevents",
        "image": rendering.options.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": _env(role),
        "ports": [{"name": "ops", "containerPort": OPS_PORT}, *role.ports],
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "livenessProbe": _probe("/healthz", period=10, failures=6),
        "resources": RESOURCES,
        "securityContext": container_security(),
        "volumeMounts": _mounts(rendering),
    }
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(OPS_PORT),
        "prometheus.io/path": "/metrics",
        **role.pod_annotations,
    }
    pod = {
        "metadata": {"labels": _labels(role), "annotations": annotations},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": pod_security(RUN_AS),
            "containers": [container],
            "volumes": _volumes(rendering),
        },
    }
    spec = {"replicas": role.replicas, "selector": {"matchLabels": _selector(role)}}
    spec["template"] = pod
    metadata = _metadata(role.object_name, rendering.options.namespace, _labels(role))
    if role.single_replica_reason:
        metadata["annotations"] = {SINGLE_REPLICA: role.single_replica_reason}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def _env(role: RolePlan) -> list[dict[str, Any]]:
    pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
    return [
        {"name": "POD_NAME", "valueFrom": pod_name},  # MQTT $share sources' client ids
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},  # the root filesystem is read-only
        *role.env,
    ]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "ops"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def pod_security(user: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _mounts(rendering: Rendering) -> list[dict[str, Any]]:
    mounts = [
        {"name": "manifests", "mountPath": MANIFESTS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if rendering.files.secrets:
        mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    return mounts


def _volumes(rendering: Rendering) -> list[dict[str, Any]]:
    volumes = [
        {"name": "manifests", "configMap": {"name": names.MANIFESTS}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if rendering.files.secrets:
        volumes.append({"name": "secrets", "secret": {"secretName": names.SECRETS}})
    return volumes


def service(
    name: str, namespace: str, labels: dict, selector: dict, ports: list[dict]
) -> dict[str, Any]:
    service_ports = [
        {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]} for p in ports
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, labels),
        "spec": {"selector": selector, "ports": service_ports},
    }


def disruption_budget(name: str, namespace: str, labels: dict, selector: dict) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, namespace, labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }


# -- the shared Dapr proxy (standalone mode) -------------------------------------------


def dapr_proxy_objects(rendering: Rendering) -> list[dict[str, Any]]:
    ns = rendering.options.namespace
    selector = {APP: names.PREFIX, ROLE: names.DAPR_PROXY}
    labels = {**selector, "app.kubernetes.io/component": "dapr-proxy"}
    files = {
        f"{c['metadata']['name']}.yaml": yaml.safe_dump(c, sort_keys=False)
        for c in rendering.components
    }
    ports = [{"name": "grpc", "containerPort": names.DAPR_GRPC_PORT}]
    return [
        config_map(names.DAPR_PROXY_COMPONENTS, ns, files),
        _dapr_deployment(ns, labels, selector, ports),
        service(names.DAPR_PROXY, ns, labels, selector, ports),
    ]


def _dapr_deployment(ns: str, labels: dict, selector: dict, ports: list[dict]) -> dict:
    container = {
        "name": "daprd",
        "image": dapr.DAPR_IMAGE,
        "command": ["/daprd"],
        "args": dapr_proxy_args(),
        "ports": [*ports, {"name": "http", "containerPort": dapr.DAPR_HTTP_PORT}],
        "readinessProbe": _dapr_probe(),
        "livenessProbe": _dapr_probe(),
        "resources": RESOURCES,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "components", "mountPath": "/components", "readOnly": True}],
    }
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": pod_security(dapr.DAPR_USER),
            "containers": [container],
            "volumes": [{"name": "components", "configMap": {"name": names.DAPR_PROXY_COMPONENTS}}],
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(names.DAPR_PROXY, ns, labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "template": pod},
    }


def dapr_proxy_args() -> list[str]:
    return [
        "--mode",
        "standalone",
        "--app-id",
        names.DAPR_PROXY,
        "--dapr-grpc-port",
        str(names.DAPR_GRPC_PORT),
        "--dapr-http-port",
        str(dapr.DAPR_HTTP_PORT),
        "--dapr-listen-addresses",
        "0.0.0.0",
        "--resources-path",
        "/components",
        "--log-as-json",
    ]


def _dapr_probe() -> dict[str, Any]:
    return {"httpGet": {"path": "/v1.0/healthz", "port": "http"}, "periodSeconds": 10}
