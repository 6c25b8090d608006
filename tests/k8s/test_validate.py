"""The offline validator in tests/k8s/validate.py rejects what an API server would reject, for
each family of kinds (built-in, third-party CRD, ours), says which object and where, and
admits well-formed objects. The vendored CRDs are the release files SOURCES.md names."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.validate import (
    OUR_CRDS,
    ROOT,
    VENDORED_CRDS,
    crd_schemas,
    load_docs,
    validate_all,
    validate_object,
)

Obj = dict[str, Any]
LABELS = {"app.kubernetes.io/name": "fnevents", "app.kubernetes.io/component": "trigger"}
RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment() -> Obj:
    probe = {"httpGet": {"path": "/readyz", "port": "ops"}, "periodSeconds": 5}
    container = {
        "name": "fnevents",
        "image": "ghcr.io/fnevents/fnevents:0.1.0",
        "args": ["run", "-f", "/etc/fnevents/manifests", "--only", "trigger/default/t"],
        "ports": [{"name": "ops", "containerPort": 9464}],
        "env": [{"name": "DAPR_GRPC_ENDPOINT", "value": "fnevents-dapr-proxy.default.svc:50001"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "ops"}},
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fnevents-trigger-default-t", "labels": LABELS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS, "annotations": {"prometheus.io/port": "9464"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fnevents-function-default-hello", "labels": LABELS},
        "spec": {
            "selector": LABELS,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def scaled_object() -> Obj:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "fnevents-trigger-default-t"},
        "spec": {
            "scaleTargetRef": {"name": "fnevents-trigger-default-t"},
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "pollingInterval": 30,
            "cooldownPeriod": 300,
            "triggers": [
                {
                    "type": "redis-streams",
                    "metadata": {
                        "address": "redis.default.svc:6379",
                        "stream": "default-clock-tick",
                        "consumerGroup": "default-t",
                        "lagCount": "10",
                    },
                    "authenticationRef": {"name": "fnevents-redis"},
                }
            ],
        },
    }


def trigger_authentication() -> Obj:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "fnevents-redis"},
        "spec": {
            "secretTargetRef": [{"parameter": "password", "name": "redis", "key": "password"}]
        },
    }


def component() -> Obj:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "eventbus"},
        "spec": {
            "type": "pubsub.redis",
            "version": "v1",
            "metadata": [
                {"name": "redisHost", "value": "redis.default.svc:6379"},
                {"name": "maxLenApprox", "value": 10000},
                {"name": "redisPassword", "secretKeyRef": {"name": "redis", "key": "password"}},
            ],
        },
        "scopes": ["fnevents-trigger-default-t"],
    }


def service_monitor() -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "fnevents"},
        "spec": {
            "selector": {"matchLabels": LABELS},
            "endpoints": [{"port": "ops", "interval": "30s", "path": "/metrics"}],
        },
    }


BUILT_IN = [
    deployment(),
    service(),
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"a.yaml": "x"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "fnevents-trigger-default-t"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "fnevents"},
        "spec": {
            "podSelector": {"matchLabels": LABELS},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 9464, "protocol": "TCP"}]}],
        },
    },
]
THIRD_PARTY = [scaled_object(), trigger_authentication(), component(), service_monitor()]


def our_manifests() -> list[Obj]:
    """The fnevents manifests of the examples (not examples/kubernetes: Helm values and
    rendered objects, which tests/k8s/test_render.py validates)."""
    docs = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        if "kubernetes" not in path.relative_to(ROOT / "examples").parts:
            docs += load_docs(path.read_text())
    # Dapr's Components and OpenFunction's own Functions (core.openfunction.io) have their
    # owners' CRDs, not ours
    theirs = ("dapr.io/", "core.openfunction.io/")
    return [doc for doc in docs if not doc["apiVersion"].startswith(theirs)]


@pytest.mark.parametrize("obj", BUILT_IN + THIRD_PARTY, ids=lambda o: o["kind"])
def test_good_objects_pass(obj: Obj) -> None:
    validate_object(obj)


def test_every_example_manifest_of_our_kinds_passes_its_generated_crd() -> None:
    docs = our_manifests()
    assert {doc["apiVersion"] for doc in docs} == {
        "events.openfunction.io/v1alpha1",
        "fnevents.dev/v1alpha1",
    }
    validate_all(docs)


def test_int_or_string_and_preserved_fields_accept_both_shapes() -> None:
    monitor = service_monitor()
    monitor["spec"]["endpoints"] = [{"targetPort": 9464}, {"targetPort": "ops"}]
    validate_object(monitor)
    comp = component()
    comp["spec"]["metadata"] = [{"name": "a", "value": {"nested": [1, "x"]}}]
    validate_object(comp)


def at(path: str, value: Any) -> Callable[[Obj], None]:
    """A mutation setting the dotted ``path`` (list indexes as numbers) to ``value``;
    ``value=DELETE`` removes it."""

    def mutate(obj: Obj) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = obj
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


DELETE = object()
CONTAINER = "spec.template.spec.containers.0"
TRIGGER = "spec.triggers.0"

BAD = [
    # built-in kinds: the Kubernetes schema
    (deployment, at("spec.replicas", "2"), r"\$\.spec\.replicas: '2' is not of type 'integer'"),
    (deployment, at(f"{CONTAINER}.bogus", 1), r"containers\[0\]: .*'bogus' was unexpected"),
    (deployment, at(f"{CONTAINER}.name", "Fn_Events"), r"containers\[0\]\.name: 'Fn_Events'"),
    (deployment, at(f"{CONTAINER}.ports.0.name", "ops-port-too-long"), r"ports\[0\]\.name"),
    (
        deployment,
        at("spec.selector.matchLabels", {"app": "other"}),
        r"\$\.spec\.selector\.matchLabels: .* not in the pod template's labels",
    ),
    (deployment, at("metadata.name", "Trigger_1"), r"\$\.metadata\.name: 'Trigger_1'"),
    (deployment, at("metadata.labels.team", "x" * 64), r"\$\.metadata\.labels\.team"),
    (deployment, at("metadata.annotations", {"replicas": 3}), r"annotations\.replicas: 3"),
    (service, at("metadata.name", "1-hello"), r"DNS-1035"),
    (service, at("spec.ports.0.port", "http"), r"\$\.spec\.ports\[0\]\.port"),
    # KEDA: the CRD schema, its CEL rule, and the scaler's own required metadata
    (scaled_object, at("spec.scaleTargetRef", DELETE), r"'scaleTargetRef' is a required"),
    (
        scaled_object,
        at(f"{TRIGGER}.metadata.lagCount", 10),
        r"\$\.spec\.triggers\[0\]\.metadata\.lagCount: 10 is not of type 'string'",
    ),
    (scaled_object, at("spec.minReplicaCount", 20), r"\$\.spec: minReplicaCount must be less"),
    (scaled_object, at("spec.pollingInterval", 2**31), r"pollingInterval: .* 'int32'"),
    (scaled_object, at(f"{TRIGGER}.metadata.stream", DELETE), r"requires 'stream'"),
    (scaled_object, at(f"{TRIGGER}.metadata.lagCount", "ten"), r"lagCount: 'ten' is not an"),
    (
        scaled_object,
        at(TRIGGER, {"type": "kafka", "metadata": {"topic": "t"}}),
        r"kafka scaler requires 'bootstrapServers'",
    ),
    (trigger_authentication, at("spec.secretTargetRef.0.key", DELETE), r"'key' is a required"),
    # Dapr
    (component, at("spec.metadta", []), r"\$\.spec: .*'metadta' was unexpected"),
    (component, at("spec.metadata.0.name", DELETE), r"metadata\[0\]: 'name' is a required"),
    (component, at("spec.version", DELETE), r"\$\.spec: 'version' is a required"),
    # Prometheus operator
    (service_monitor, at("spec.endpoints", {"port": "ops"}), r"\$\.spec\.endpoints: .* 'array'"),
]


@pytest.mark.parametrize(("make", "mutate", "expected"), BAD)
def test_wrong_objects_fail_naming_the_object_and_path(
    make: Callable[[], Obj], mutate: Callable[[Obj], None], expected: str
) -> None:
    obj = copy.deepcopy(make())  # the factories share LABELS
    mutate(obj)
    with pytest.raises(AssertionError) as caught:
        validate_object(obj)
    message = str(caught.value)
    assert f"{obj['kind']}/{obj['metadata']['name']}" in message
    assert re.search(expected, message), message


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        ("Trigger", at("spec.inputz", {}), r"\$\.spec: .*'inputz' was unexpected"),
        ("EventSource", at("spec.eventBus", 7), r"\$\.spec\.eventBus: 7 is not of type"),
        ("Function", at("spec.target", "not an identifier"), r"\$\.spec\.target: .* match"),
        ("EventBus", at("metadata", {}), r"\$\.metadata\.name: missing"),
    ],
)
def test_wrong_objects_of_our_kinds_fail(
    kind: str, mutate: Callable[[Obj], None], expected: str
) -> None:
    obj = copy.deepcopy(next(doc for doc in our_manifests() if doc["kind"] == kind))
    mutate(obj)
    with pytest.raises(AssertionError, match=expected):
        validate_object(obj)


def test_an_unknown_kind_has_no_schema() -> None:
    obj = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "x"}}
    with pytest.raises(AssertionError, match=r"Service/x: no schema for serving.knative.dev/v1"):
        validate_object(obj)


def test_validate_all_reports_every_failing_object() -> None:
    bad_service, bad_component = service(), component()
    bad_service["spec"]["ports"][0]["port"] = "http"
    del bad_component["spec"]["type"]
    with pytest.raises(AssertionError) as caught:
        validate_all([deployment(), bad_service, bad_component])
    message = str(caught.value)
    assert "Service/fnevents-function-default-hello" in message
    assert "Component/eventbus" in message
    assert "Deployment" not in message


def test_load_docs_reads_multi_document_yaml() -> None:
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# c\n"
    assert load_docs(text) == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]
    with pytest.raises(AssertionError, match="document 1 is a list"):
        load_docs("apiVersion: v1\nkind: X\n---\n- a\n")
    with pytest.raises(AssertionError, match="no apiVersion/kind"):
        load_docs("metadata: {}\n")


def test_schemas_cover_every_kind_render_and_the_chart_emit() -> None:
    known = set(crd_schemas())
    assert {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
        ("dapr.io/v1alpha1", "Component"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("events.openfunction.io/v1alpha1", "EventSource"),
        ("events.openfunction.io/v1alpha1", "EventBus"),
        ("events.openfunction.io/v1alpha1", "ClusterEventBus"),
        ("events.openfunction.io/v1alpha1", "Trigger"),
        ("fnevents.dev/v1alpha1", "Function"),
    } <= known
    assert OUR_CRDS.is_dir()


def git_blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def test_vendored_crds_are_the_release_files_sources_md_names() -> None:
    table = (VENDORED_CRDS / "SOURCES.md").read_text()
    rows = re.findall(r"^\| `([^`]+\.yaml)` \|.*\| `([0-9a-f]{40})` \|$", table, re.MULTILINE)
    files = sorted(p.name for p in VENDORED_CRDS.glob("*.yaml"))
    assert sorted(name for name, _ in rows) == files
    for name, blob in rows:
        assert git_blob_id(VENDORED_CRDS / name) == blob, f"{name} differs from its release"
