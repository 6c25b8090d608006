"""The Helm chart ``charts/fnevents``, rendered and linted by the Helm embedded in
``helm-python-sdk`` (no helm binary, no cluster): every object it makes validates, a wrong
value fails at install naming the key, and per-role it makes the same Deployments,
Services, PodDisruptionBudgets and ScaledObjects as ``fnevents render``."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.validate import load_docs, validate_all

helm = pytest.importorskip("helm_python", reason="pip install helm-python-sdk")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fnevents"
RELEASE = "fnevents"
NAMESPACE = "events"
OPS = 9464

Obj = dict[str, Any]

#: per-role values as `fnevents render --helm-values` writes them (the values contract in
#: charts/fnevents/values.yaml): a cron source kept at one replica, a KEDA-scaled trigger,
#: a sync function with a Service, an HTTP source with a fixed replica count of 2
PER_ROLE: Obj = {
    "mode": "per-role",
    "roles": [
        {
            "name": "source-default-clock",
            "role": "source/default/clock",
            "replicas": 1,
            "singleReplicaReason": "a cron source fires once per replica",
        },
        {
            "name": "trigger-default-hello-trigger",
            "role": "trigger/default/hello-trigger",
            "replicas": 1,
            "env": [{"name": "FNEVENTS_EXAMPLE", "value": "1"}],
            "scaledObject": {
                "minReplicaCount": 1,
                "maxReplicaCount": 10,
                "pollingInterval": 30,
                "cooldownPeriod": 300,
                "triggers": [
                    {
                        "type": "redis-streams",
                        "metadata": {
                            "address": "redis.events.svc:6379",
                            "stream": "default-tick",
                            "consumerGroup": "trigger-hello-trigger",
                            "pendingEntriesCount": "5",
                        },
                    }
                ],
            },
        },
        {
            "name": "function-default-hello",
            "role": "function/default/hello",
            "replicas": 1,
            "ports": [{"name": "http", "containerPort": 8080}],
        },
        {
            "name": "source-default-ingest",
            "role": "source/default/ingest",
            "replicas": 2,
            "ports": [{"name": "http", "containerPort": 8081}],
        },
    ],
}
SIDECAR = {
    "dapr.io/enabled": "true",
    "dapr.io/app-id": "fnevents-trigger-default-hello-trigger",
    "dapr.io/app-port": "8080",
    "dapr.io/app-protocol": "grpc",
    "dapr.io/log-as-json": "true",
    "dapr.io/config": "fnevents",
}
COMPONENT: Obj = {
    "apiVersion": "dapr.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "eventbus"},
    "spec": {
        "type": "pubsub.redis",
        "version": "v1",
        "metadata": [{"name": "redisHost", "value": "redis.events.svc:6379"}],
    },
}
#: labels Helm's conventions add and `fnevents render` (which knows no release) does not
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)


# --- rendering ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    loaded = helm.Chart.load(str(CHART))
    yield loaded
    loaded.close()


def manifests(example: str = "quickstart") -> dict[str, str]:
    folder = ROOT / "examples" / example
    return {path.name: path.read_text() for path in sorted(folder.glob("*.yaml"))}


def with_manifests(values: Obj) -> Obj:
    return {"manifests": {"files": manifests()}, **copy.deepcopy(values)}


def rendered(chart: Any, values: Obj) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(chart: Any, values: Obj) -> list[Obj]:
    """Every object the chart makes for ``values`` (NOTES.txt is not an object)."""
    files = rendered(chart, values)
    text = "\n---\n".join(v for k, v in sorted(files.items()) if not k.endswith("NOTES.txt"))
    return load_docs(text)


def notes(chart: Any, values: Obj) -> str:
    return next(v for k, v in rendered(chart, values).items() if k.endswith("NOTES.txt"))


def of_kind(docs: list[Obj], kind: str) -> dict[str, Obj]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(deployment: Obj) -> Obj:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


# --- all-in-one (the default) ---------------------------------------------------------------


def test_defaults_render_one_all_in_one_deployment(chart: Any) -> None:
    docs = objects(chart, with_manifests({}))
    validate_all(docs)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
        ("ConfigMap", "fnevents-manifests"),
        ("Deployment", "fnevents"),
    ]
    deployment = of_kind(docs, "Deployment")["fnevents"]
    assert container(deployment)["args"] == [
        "run",
        "-f",
        "/etc/fnevents/manifests",
        "--host",
        "0.0.0.0",
        "--port",
        str(OPS),
    ]
    assert_hardened(deployment)
    config = of_kind(docs, "ConfigMap")["fnevents-manifests"]
    assert config["data"] == manifests(), "the manifests are mounted byte for byte"


def assert_hardened(deployment: Obj) -> None:
    """Probes on the ops port, scrape annotations, the restricted securityContext, no
    service-account token, a writable /tmp and the manifests mounted read-only."""
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    main = container(deployment)
    assert {"name": "ops", "containerPort": OPS} in main["ports"]
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert (
        pod["metadata"]["annotations"].items()
        >= {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(OPS),
            "prometheus.io/path": "/metrics",
        }.items()
    )
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/etc/fnevents/manifests"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/tmp"]["name"]] == {"name": "tmp", "emptyDir": {}}
    assert main["resources"]["requests"] and main["resources"]["limits"]


def test_all_in_one_ports_make_a_service_and_extra_args_follow(chart: Any) -> None:
    values = with_manifests(
        {"allInOne": {"ports": [{"name": "http", "containerPort": 8080}], "extraArgs": ["-q"]}}
    )
    docs = objects(chart, values)
    validate_all(docs)
    service = of_kind(docs, "Service")["fnevents"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
    assert service["spec"]["selector"]["fnevents.dev/role"] == "all-in-one"
    assert container(of_kind(docs, "Deployment")["fnevents"])["args"][-1] == "-q"


def test_secret_manifests_go_into_a_secret_read_with_a_second_file_flag(chart: Any) -> None:
    secret_manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: redis}\n"
    values = with_manifests({"manifests": {"secretFiles": {"redis.yaml": secret_manifest}}})
    values["manifests"]["files"] = manifests()
    docs = objects(chart, values)
    validate_all(docs)
    secret = of_kind(docs, "Secret")["fnevents-secrets"]
    assert base64.b64decode(secret["data"]["redis.yaml"]).decode() == secret_manifest
    assert "redis.yaml" not in of_kind(docs, "ConfigMap")["fnevents-manifests"]["data"]
    main = container(of_kind(docs, "Deployment")["fnevents"])
    assert main["args"][:5] == [
        "run",
        "-f",
        "/etc/fnevents/manifests",
        "-f",
        "/etc/fnevents/secrets",
    ]
    assert {"name": "secrets", "mountPath": "/etc/fnevents/secrets", "readOnly": True} in main[
        "volumeMounts"
    ]


def test_set_file_puts_a_manifest_into_the_config_map(chart: Any) -> None:
    path = ROOT / "examples" / "quickstart" / "trigger.yaml"
    values = helm.parse_set_file(f"manifests.files.trigger\\.yaml={path}")
    docs = objects(chart, values)
    assert of_kind(docs, "ConfigMap")["fnevents-manifests"]["data"] == {
        "trigger.yaml": path.read_text()
    }


def test_an_existing_config_map_is_mounted_and_none_is_made(chart: Any) -> None:
    docs = objects(chart, {"manifests": {"existingConfigMap": "my-manifests"}})
    validate_all(docs)
    assert not of_kind(docs, "ConfigMap")
    volumes = of_kind(docs, "Deployment")["fnevents"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "manifests", "configMap": {"name": "my-manifests"}} in volumes


def test_files_and_an_existing_config_map_together_fail(chart: Any) -> None:
    values = with_manifests({})
    values["manifests"]["existingConfigMap"] = "my-manifests"
    with pytest.raises(
        helm.HelmError, match=r"either manifests\.files or manifests\.existingConfigMap"
    ):
        rendered(chart, values)


def test_no_manifests_renders_but_notes_warn(chart: Any) -> None:
    assert "WARNING: no manifests were given" in notes(chart, {})


# --- per-role -------------------------------------------------------------------------------


def test_per_role_makes_one_deployment_per_role_running_only_that_role(chart: Any) -> None:
    docs = objects(chart, with_manifests(PER_ROLE))
    validate_all(docs)
    deployments = of_kind(docs, "Deployment")
    assert sorted(deployments) == sorted(f"fnevents-{r['name']}" for r in PER_ROLE["roles"])
    for role in PER_ROLE["roles"]:
        deployment = deployments[f"fnevents-{role['name']}"]
        assert_hardened(deployment)
        assert deployment["spec"]["replicas"] == role["replicas"]
        args = container(deployment)["args"]
        assert args[args.index("--only") + 1] == role["role"]
        assert container(deployment)["env"][2:] == role.get("env", [])
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert labels["fnevents.dev/role"] == role["name"]


def test_per_role_services_pdbs_and_scaled_objects_follow_the_values(chart: Any) -> None:
    docs = objects(chart, with_manifests(PER_ROLE))
    assert sorted(of_kind(docs, "Service")) == [
        "fnevents-function-default-hello",
        "fnevents-source-default-ingest",
    ]
    # replicas 2, or a KEDA maximum of 10: a budget; the single-replica roles: none
    assert sorted(of_kind(docs, "PodDisruptionBudget")) == [
        "fnevents-source-default-ingest",
        "fnevents-trigger-default-hello-trigger",
    ]
    (scaled,) = of_kind(docs, "ScaledObject").values()
    trigger_role = PER_ROLE["roles"][1]
    assert scaled["spec"] == {
        "scaleTargetRef": {"name": "fnevents-trigger-default-hello-trigger"},
        **trigger_role["scaledObject"],
    }, "the ScaledObject is render's, verbatim: no name is derived in a template"


def test_a_name_longer_than_kubernetes_allows_fails_instead_of_being_cut(chart: Any) -> None:
    values = with_manifests({**PER_ROLE, "fullnameOverride": "a-release-name-that-is-long"})
    values["roles"][0]["name"] = "source-default-" + "c" * 30
    with pytest.raises(helm.HelmError, match="longer than 63 characters"):
        rendered(chart, values)


def test_keda_off_keeps_fixed_replicas_and_makes_no_scaled_objects(chart: Any) -> None:
    docs = objects(chart, with_manifests({**PER_ROLE, "keda": {"enabled": False}}))
    validate_all(docs)
    assert not of_kind(docs, "ScaledObject")
    assert sorted(of_kind(docs, "PodDisruptionBudget")) == ["fnevents-source-default-ingest"]


def test_notes_say_which_roles_stay_single_and_why_and_how_to_see_logs(chart: Any) -> None:
    text = notes(chart, with_manifests(PER_ROLE))
    assert "source/default/clock: a cron source fires once per replica" in text
    assert "kubectl -n events logs -f deployment/fnevents-trigger-default-hello-trigger" in text
    assert f"port-forward deployment/fnevents-source-default-clock {OPS}" in text
    assert "/metrics" in text


# --- Dapr -----------------------------------------------------------------------------------


def test_sidecar_mode_annotates_pods_and_makes_the_components(chart: Any) -> None:
    values = with_manifests(PER_ROLE)
    values["roles"][1]["podAnnotations"] = SIDECAR
    values["components"] = [COMPONENT]
    docs = objects(chart, values)
    validate_all(docs)
    pod = of_kind(docs, "Deployment")["fnevents-trigger-default-hello-trigger"]["spec"]["template"]
    assert pod["metadata"]["annotations"].items() >= SIDECAR.items()
    assert of_kind(docs, "Component") == {"eventbus": COMPONENT}
    assert not of_kind(docs, "Deployment").get("fnevents-dapr-proxy")


def test_proxy_mode_makes_one_shared_daprd_reading_the_components(chart: Any) -> None:
    endpoint = f"fnevents-dapr-proxy.{NAMESPACE}.svc:50001"
    values = with_manifests(PER_ROLE)
    for role in values["roles"]:
        role["env"] = [{"name": "DAPR_GRPC_ENDPOINT", "value": endpoint}]
    values |= {"components": [COMPONENT], "daprProxy": {"enabled": True}}
    docs = objects(chart, values)
    validate_all(docs)
    proxy = of_kind(docs, "Deployment")["fnevents-dapr-proxy"]
    daprd = container(proxy)
    assert daprd["image"].startswith("daprio/daprd:")
    assert daprd["args"][daprd["args"].index("--mode") + 1] == "standalone"
    assert proxy["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    service = of_kind(docs, "Service")["fnevents-dapr-proxy"]
    assert service["spec"]["ports"] == [{"name": "grpc", "port": 50001, "targetPort": "grpc"}]
    assert service["metadata"]["name"] == endpoint.split(".")[0], "the roles' endpoint resolves"
    components = of_kind(docs, "ConfigMap")["fnevents-dapr-proxy-components"]["data"]
    assert load_docs(components["eventbus.yaml"]) == [COMPONENT]


# --- monitoring and network policy ---------------------------------------------------------


def test_service_monitor_and_network_policy(chart: Any) -> None:
    values = with_manifests(PER_ROLE)
    values |= {
        "serviceMonitor": {"enabled": True, "interval": "15s"},
        "networkPolicy": {"enabled": True},
        "daprProxy": {"enabled": True},
    }
    docs = objects(chart, values)
    validate_all(docs)
    (monitor,) = of_kind(docs, "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"] == [{"port": "ops", "path": "/metrics", "interval": "15s"}]
    metrics = of_kind(docs, "Service")["fnevents-metrics"]
    assert metrics["spec"]["clusterIP"] == "None"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    )
    policies = of_kind(docs, "NetworkPolicy")
    ingress = policies["fnevents"]["spec"]["ingress"]
    assert ingress[0] == {"ports": [{"port": OPS, "protocol": "TCP"}]}, "probes and scrapes"
    assert {p["port"] for p in ingress[1]["ports"]} == {8080, 8081}
    assert ingress[1]["from"] == [{"podSelector": {}}], "by default: this namespace only"
    assert "fnevents-dapr-proxy" in policies


# --- lint and the values schema -------------------------------------------------------------


def findings(values: Obj | None = None) -> list[str]:
    """``helm lint`` messages worse than info; the SDK returns them, it never raises."""
    report = helm.lint(str(CHART), values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    return [f"{m['path']}: {m['error']}" for m in problems] + report["errors"]


KUBERNETES_EXAMPLE = ROOT / "examples" / "kubernetes" / "values.yaml"


@pytest.mark.parametrize(
    "values",
    [None, {"manifests": {"files": manifests()}}, PER_ROLE, "example"],
    ids=["defaults", "all-in-one", "per-role", "examples-kubernetes"],
)
def test_helm_lint_passes(values: Obj | str | None) -> None:
    if values == "example":  # the values `fnevents render --helm-values` wrote for the example
        values = helm.values_from_yaml(KUBERNETES_EXAMPLE.read_text())
    assert findings(values) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "bogus"}, "at '/mode': value must be one of 'all-in-one', 'per-role'"),
        ({"opsPort": "x"}, "at '/opsPort': got string, want integer"),
        ({"opsPort": 70000}, "at '/opsPort': maximum: got 70,000, want 65,535"),
        ({"modee": "per-role"}, "additional properties 'modee' not allowed"),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
        (
            {"roles": [{"name": "Trigger_1", "role": "trigger/t", "replicas": 1}]},
            "at '/roles/0/name': 'Trigger_1' does not match pattern",
        ),
        ({"roles": [{"name": "t", "role": "t", "replicas": 1}]}, "at '/roles/0/role'"),
        (
            {"roles": [{"name": "t", "role": "trigger/t", "replicas": 1, "scaledObject": {}}]},
            "at '/roles/0/scaledObject': missing property 'triggers'",
        ),
    ],
)
def test_a_wrong_value_fails_at_install_naming_the_key(
    chart: Any, values: Obj, message: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as failure:
        rendered(chart, values)
    assert message in str(failure.value)
    assert any(message in problem for problem in findings(values)), "lint reports it too"


# --- parity with `fnevents render` ----------------------------------------------------------

#: an EventBus through Dapr (sidecar unless render is asked for the proxy), an HTTP ingest
#: source with a Service, a cron source and a Trigger, plus a v1 Secret for the Secret path
DAPR_APP = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: bus}
spec:
  type: pubsub.redis
  version: v1
  metadata: [{name: redisHost, value: "redis.events.svc:6379"}]
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {name: default, annotations: {"dapr.io/config": "tracing"}}
spec: {component: bus, sidecar: true}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {name: readings}
spec:
  eventBus: default
  http: {reading: {port: 8000}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {name: clock}
spec:
  eventBus: default
  cron: {tick: {schedule: "@hourly"}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {name: relay}
spec:
  eventBus: default
  inputs: {reading: {eventSource: readings, event: reading}}
  subscribers: [{condition: reading, topic: relayed}]
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata: {name: redis-auth}
stringData: {password: not-a-real-one}
"""


def render_cases() -> Iterator[Any]:
    from tests.k8s.render_helper import BUSES, EXAMPLES

    for example in EXAMPLES:
        for bus in BUSES:
            arguments = ("-f", f"examples/{example}", "--components", f"components/{bus}.yaml")
            yield pytest.param(arguments, id=f"{example}-{bus}")
    yield pytest.param(("-f", "{dapr}"), id="dapr-sidecar")
    yield pytest.param(("-f", "{dapr}", "--dapr-mode", "proxy"), id="dapr-proxy")
    yield pytest.param(("-f", "{dapr}", "--no-keda", "-f", "{secret}"), id="secret-no-keda")


@pytest.mark.parametrize("arguments", list(render_cases()))
def test_per_role_chart_makes_what_render_prints(
    chart: Any, arguments: tuple[str, ...], tmp_path: Path
) -> None:
    """`fnevents render` and the chart fed `fnevents render --helm-values` make the same
    objects (Deployments, Services, PodDisruptionBudgets, ScaledObjects, and the ConfigMaps,
    Secret and Dapr Components with them), apart from Helm's standard labels."""
    import yaml

    from tests.k8s.render_helper import render

    (tmp_path / "app.yaml").write_text(DAPR_APP)
    (tmp_path / "secret.yaml").write_text(SECRET)
    paths = {"dapr": str(tmp_path / "app.yaml"), "secret": str(tmp_path / "secret.yaml")}
    arguments = (*(a.format(**paths) for a in arguments), "--namespace", NAMESPACE)
    printed = render(*arguments).objects
    values = yaml.safe_load(render(*arguments, "--helm-values").out)
    made = objects(chart, values)
    validate_all(made)
    assert by_name(made) == by_name(printed)


def by_name(docs: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(doc["kind"], doc["metadata"]["name"]): comparable(doc) for doc in docs}


def comparable(doc: Obj) -> Obj:
    """``doc`` without Helm's standard labels; a ConfigMap of Dapr Components parsed (the
    chart's toYaml and render's PyYAML spell the same object differently)."""
    out = without_helm_labels(doc)
    if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-components"):
        out["data"] = {key: load_docs(text) for key, text in out.get("data", {}).items()}
    return out


def without_helm_labels(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_helm_labels(v) for k, v in node.items() if k not in HELM_LABELS}
    if isinstance(node, list):
        return [without_helm_labels(item) for item in node]
    return node
