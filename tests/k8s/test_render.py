"""``fnevents render``: every object validates, and what matters on each is right.

The three examples are rendered on each bus backend; every object goes through
``tests/k8s/validate.py`` (Kubernetes schemas, the KEDA and Dapr CRDs). Names on scalers are
compared with the runtime's own functions here; ``test_scaling_names.py`` compares them
with what a real ``fnevents run`` creates on the broker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from events.app.load import load_catalog
from events.app.plans import group_of, topic_for
from tests.k8s.render_helper import BUSES, EXAMPLES, ROOT, example, render
from tests.k8s.validate import validate_all

SCALER_OF_BUS = {"redis": "redis-streams", "kafka": "kafka", "jetstream": "nats-jetstream"}


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("name", EXAMPLES)
def test_every_object_validates(name: str, bus: str) -> None:
    validate_all(example(name, bus).objects)


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("name", EXAMPLES)
def test_each_role_runs_alone_hardened_and_probed(name: str, bus: str) -> None:
    rendered = example(name, bus)
    deployments = rendered.of_kind("Deployment")
    catalog = load_catalog([str(ROOT / "examples" / name)], [])
    roles = {f"{kind}/default/{i.name}" for kind, k in _ROLES for i in catalog.of_kind(k)}
    assert {_only(d) for d in deployments.values()} == roles
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
        assert {"name": "ops", "containerPort": 9464} in container["ports"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9464"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["spec"]["automountServiceAccountToken"] is False
        assert pod["spec"]["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert {"name": "tmp", "emptyDir": {}} in pod["spec"]["volumes"]


_ROLES = (("source", "EventSource"), ("trigger", "Trigger"), ("function", "Function"))


def _only(deployment: dict) -> str:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["run", "-f", "/etc/fnevents/manifests"]
    return args[args.index("--only") + 1]


@pytest.mark.parametrize("bus", BUSES)
@pytest.mark.parametrize("name", EXAMPLES)
def test_the_configmap_is_what_fnevents_run_reads(name: str, bus: str, tmp_path: Path) -> None:
    """Written out as the pod sees it, the ConfigMap loads cleanly: the replaced Component
    is left out, and a sync Function's url is its Service's."""
    rendered = example(name, bus)
    files = rendered.of_kind("ConfigMap")["fnevents-manifests"]["data"]
    for key, text in files.items():
        (tmp_path / key).write_text(text)
    catalog = load_catalog([str(tmp_path)], [])
    services = rendered.of_kind("Service")
    for function in catalog.of_kind("Function"):
        spec = function.resource.spec
        if spec.input is not None:
            continue
        name = f"fnevents-function-default-{function.name}"
        port = services[name]["spec"]["ports"][0]["port"]
        assert spec.url == f"http://{name}.default.svc:{port}/"
        assert (spec.host, spec.port) == ("0.0.0.0", port)
        assert (tmp_path / spec.source).is_file()
    component = catalog.get("Component", "default", "eventbus")
    assert component.resource.spec.type == f"pubsub.{'mqtt3' if bus == 'mqtt' else bus}"


@pytest.mark.parametrize("bus", ["redis", "kafka", "jetstream"])
def test_scalers_name_the_runtimes_topic_and_group(bus: str) -> None:
    rendered = example("vehicle-telemetry", bus)
    scaled = rendered.of_kind("ScaledObject")
    assert set(scaled) == {
        "fnevents-trigger-default-telemetry",
        "fnevents-function-default-vehicle-metrics",
    }
    catalog = load_catalog(["examples/vehicle-telemetry"], [f"components/{bus}.yaml"])
    trigger = catalog.get("Trigger", "default", "telemetry")
    function = catalog.get("Function", "default", "vehicle-metrics")
    expected = {
        "fnevents-trigger-default-telemetry": (
            topic_for("default", "vehicles", "telemetry"),
            group_of(trigger),
        ),
        "fnevents-function-default-vehicle-metrics": ("vehicle-telemetry", group_of(function)),
    }
    for name, (topic, group) in expected.items():
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"] == {"name": name}
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 10)
        (trigger_,) = spec["triggers"]
        assert trigger_["type"] == SCALER_OF_BUS[bus]
        metadata = trigger_["metadata"]
        if bus == "redis":
            assert metadata["stream"] == topic
            assert metadata["consumerGroup"] == group
            assert metadata["address"] == "localhost:6379"
        elif bus == "kafka":
            assert metadata["topic"] == topic
            assert metadata["consumerGroup"] == f"{group}.{topic}"
            assert metadata["bootstrapServers"] == "localhost:9092"
        else:
            assert metadata["stream"] == topic  # topics without dots are valid stream names
            assert metadata["consumer"] == group
            assert metadata["natsServerMonitoringEndpoint"] == "localhost:8222"


@pytest.mark.parametrize("bus", BUSES)
def test_a_pdb_goes_with_every_role_that_may_run_twice(bus: str) -> None:
    rendered = example("function-chain", bus)
    budgets = rendered.of_kind("PodDisruptionBudget")
    scaled = rendered.of_kind("ScaledObject")
    for name, deployment in rendered.of_kind("Deployment").items():
        most = scaled[name]["spec"]["maxReplicaCount"] if name in scaled else 1
        most = max(most, deployment["spec"]["replicas"])
        assert (name in budgets) == (most > 1), name
        if name in budgets:
            assert budgets[name]["spec"]["maxUnavailable"] == 1
            selector = deployment["spec"]["selector"]
            assert budgets[name]["spec"]["selector"] == selector


def test_sync_functions_get_a_service_and_async_ones_none() -> None:
    rendered = example("function-chain", "redis")
    services = rendered.of_kind("Service")
    assert set(services) == {"fnevents-function-default-forward-to-kafka"}
    service = services["fnevents-function-default-forward-to-kafka"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
    deployment = rendered.of_kind("Deployment")[service["metadata"]["name"]]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_a_cron_source_stays_at_one_replica_and_says_why() -> None:
    rendered = example("quickstart", "redis")
    deployment = rendered.of_kind("Deployment")["fnevents-source-default-clock"]
    assert deployment["spec"]["replicas"] == 1
    reason = deployment["metadata"]["annotations"]["fnevents.dev/single-replica-reason"]
    assert "cron" in reason and "duplicate" in reason
    assert "fnevents-source-default-clock" not in rendered.of_kind("ScaledObject")
    assert "source/default/clock: one replica" in rendered.err


def test_an_mqtt_bus_gets_no_scaler_and_says_why() -> None:
    rendered = example("vehicle-telemetry", "mqtt")
    assert rendered.of_kind("ScaledObject") == {}
    assert "kedacore/keda#1282" in rendered.err
    for deployment in rendered.of_kind("Deployment").values():
        assert deployment["spec"]["replicas"] == 1
        assert "fnevents.dev/single-replica-reason" in deployment["metadata"]["annotations"]


def test_the_embedded_bus_is_refused_with_the_fix() -> None:
    rendered = render("-f", "examples/quickstart")
    assert rendered.status == 1
    assert "embedded in-memory bus" in rendered.err
    assert "--components components/redis.yaml" in rendered.err
    assert rendered.out == ""


def test_manifest_errors_are_those_of_validate(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: events.openfunction.io/v1alpha1\nkind: Trigger\nmetadata: {name: t}\n"
        "spec: {eventBus: default, inputs: {}, subscribers: []}\n"
    )
    rendered = render("-f", tmp_path / "bad.yaml")
    assert rendered.status == 1
    assert f"error: {tmp_path / 'bad.yaml'}, document 1" in rendered.err
    assert "nothing was rendered" in rendered.err


BUS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.redis
  version: v1
  metadata: [{name: redisHost, value: "redis.events.svc:6379"}]
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata:
  name: default
  annotations: {ANNOTATIONS}
spec: {component: pubsub, sidecar: true}
---
"""
APP = """\
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {name: ingest}
spec:
  eventBus: default
  http: {reading: {port: 8000, host: 127.0.0.1}}
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
metadata: {name: pair}
spec:
  eventBus: default
  inputs:
    a: {eventSource: ingest, event: reading}
    b: {eventSource: clock, event: tick}
  subscribers:
    - condition: a && b
      topic: pairs
"""


def _dapr_app(tmp_path: Path, annotations: str = "{}") -> Path:
    (tmp_path / "app.yaml").write_text(BUS.replace("{ANNOTATIONS}", annotations) + APP)
    return tmp_path


def test_sidecar_mode_annotates_pods_and_renders_the_component(tmp_path: Path) -> None:
    annotations = '{"dapr.io/config": "tracing"}'
    rendered = render("-f", _dapr_app(tmp_path, annotations), "--namespace", "events")
    validate_all(rendered.objects)
    deployments = rendered.of_kind("Deployment")
    source = deployments["fnevents-source-default-ingest"]["spec"]["template"]
    assert (
        source["metadata"]["annotations"].items()
        >= {
            "dapr.io/enabled": "true",
            "dapr.io/app-id": "fnevents-source-default-ingest",
            "dapr.io/app-port": "8000",
            "dapr.io/app-protocol": "http",
            "dapr.io/log-as-json": "true",
            "dapr.io/config": "tracing",
        }.items()
    )
    env = source["spec"]["containers"][0]["env"]
    assert {"name": "DAPR_GRPC_ENDPOINT", "value": "127.0.0.1:50001"} in env
    trigger = deployments["fnevents-trigger-default-pair"]["spec"]["template"]
    assert "dapr.io/app-port" not in trigger["metadata"]["annotations"]
    (component,) = rendered.of_kind("Component").values()
    assert component["metadata"] == {"name": "pubsub", "namespace": "events"}
    assert component["spec"]["type"] == "pubsub.redis"
    assert component["scopes"] == [
        "fnevents-source-default-clock",
        "fnevents-source-default-ingest",
        "fnevents-trigger-default-pair",
    ]
    assert "fnevents-dapr-proxy" not in deployments
    assert rendered.of_kind("ScaledObject") == {}  # the group is Dapr's


@pytest.mark.parametrize(
    ("annotations", "flag"),
    [('{"openfunction.io/dapr-service-mode": "standalone"}', ()), ("{}", ("--dapr-mode", "proxy"))],
)
def test_proxy_mode_shares_one_dapr(tmp_path: Path, annotations: str, flag: tuple) -> None:
    rendered = render("-f", _dapr_app(tmp_path, annotations), "--namespace", "events", *flag)
    validate_all(rendered.objects)
    deployments = rendered.of_kind("Deployment")
    proxy = deployments.pop("fnevents-dapr-proxy")
    daprd = proxy["spec"]["template"]["spec"]["containers"][0]
    assert daprd["image"].startswith("daprio/daprd:")
    assert "--resources-path" in daprd["args"]
    service = rendered.of_kind("Service")["fnevents-dapr-proxy"]
    assert service["spec"]["ports"] == [{"name": "grpc", "port": 50001, "targetPort": "grpc"}]
    components = rendered.of_kind("ConfigMap")["fnevents-dapr-proxy-components"]["data"]
    assert yaml.safe_load(components["pubsub.yaml"])["spec"]["type"] == "pubsub.redis"
    assert rendered.of_kind("Component") == {}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]
        assert not any(k.startswith("dapr.io/") for k in pod["metadata"]["annotations"])
        env = pod["spec"]["containers"][0]["env"]
        endpoint = {"name": "DAPR_GRPC_ENDPOINT", "value": "fnevents-dapr-proxy.events.svc:50001"}
        assert endpoint in env


def test_http_ingest_gets_a_service_on_all_interfaces(tmp_path: Path) -> None:
    rendered = render("-f", _dapr_app(tmp_path))
    service = rendered.of_kind("Service")["fnevents-source-default-ingest"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    app = yaml.safe_load_all(
        rendered.of_kind("ConfigMap")["fnevents-manifests"]["data"]["app.yaml"]
    )
    source = next(d for d in app if d["kind"] == "EventSource")
    assert source["spec"]["http"]["reading"]["host"] == "0.0.0.0"


def test_conditions_over_inputs_on_replicas_without_a_store_warn(tmp_path: Path) -> None:
    app = _dapr_app(tmp_path)
    text = (app / "app.yaml").read_text().replace("sidecar: true", "sidecar: false")
    (app / "app.yaml").write_text(text)
    rendered = render("-f", app)
    assert "trigger/default/pair: the condition 'a && b' combines inputs" in rendered.err
    assert "conditionStore" in rendered.err
    (app / "app.yaml").write_text(
        text.replace("  subscribers:", "  conditionStore: s\n  subscribers:")
    )
    assert "combines inputs" not in render("-f", app).err


def test_scale_option_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(
        """\
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {name: orders}
spec:
  sink: {uri: "http://sink.example/"}
  kafka:
    placed:
      brokers: "kafka.events.svc:9092"
      topic: orders
      authRequired: false
      scaleOption:
        minReplicaCount: 2
        maxReplicaCount: 6
        pollingInterval: 15
        cooldownPeriod: 60
        lagThreshold: "50"
        consumerGroup: someone-else
"""
    )
    rendered = render("-f", tmp_path)
    validate_all(rendered.objects)
    scaled = rendered.of_kind("ScaledObject")["fnevents-source-default-orders"]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 6)
    assert (scaled["pollingInterval"], scaled["cooldownPeriod"]) == (15, 60)
    assert scaled["triggers"] == [
        {
            "type": "kafka",
            "metadata": {
                "bootstrapServers": "kafka.events.svc:9092",
                "topic": "orders",
                "consumerGroup": "default-esc-kafka-placed",
                "lagThreshold": "50",
            },
        }
    ]
    deployment = rendered.of_kind("Deployment")["fnevents-source-default-orders"]
    assert deployment["spec"]["replicas"] == 2
    assert "fnevents-source-default-orders" in rendered.of_kind("PodDisruptionBudget")


def test_helm_values_carry_the_same_roles() -> None:
    objects = example("vehicle-telemetry", "redis")
    values = yaml.safe_load(example("vehicle-telemetry", "redis", "--helm-values").out)
    assert values["mode"] == "per-role"
    configmap = objects.of_kind("ConfigMap")["fnevents-manifests"]
    assert values["manifests"]["files"] == configmap["data"]
    deployments = objects.of_kind("Deployment")
    scaled = objects.of_kind("ScaledObject")
    for role in values["roles"]:
        name = f"fnevents-{role['name']}"
        assert _only(deployments[name]) == role["role"]
        assert deployments[name]["spec"]["replicas"] == role["replicas"]
        if "scaledObject" in role:
            spec = dict(scaled[name]["spec"])
            del spec["scaleTargetRef"]
            assert role["scaledObject"] == spec
        else:
            assert name not in scaled
    assert len(values["roles"]) == len(deployments)


KUBERNETES = ROOT / "examples" / "kubernetes"
VEHICLES = ("-f", "examples/vehicle-telemetry", "--components", "components/redis.yaml")


def test_the_kubernetes_example_is_what_render_prints_now() -> None:
    """examples/kubernetes cannot drift: regenerate with the commands in its README."""
    rendered = render(*VEHICLES)
    assert (KUBERNETES / "rendered.yaml").read_text() == rendered.out
    assert (KUBERNETES / "values.yaml").read_text() == render(*VEHICLES, "--helm-values").out
    validate_all(rendered.objects)
