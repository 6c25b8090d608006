"""OpenFunction ``core.openfunction.io`` Functions: every fixture loads or is refused with a
field-naming message, and each mapped field has its effect or its warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.ofn_report import NotHostable, check_hostable, view_of
from events.app.report import describe_catalog
from events.errors import ManifestErrors

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openfunction-functions"
#: Fixtures OpenFunction itself would take but fnevents refuses, and the field named.
REFUSED = {
    "v1beta1/async_mqtt-io-node_async-bindings.yaml": "spec.serving.outputs[0]",
    "v1beta2/async_mqtt-io-node_async-bindings.yaml": "spec.serving.outputs[0].dapr",
    "v1beta1/proposal_state-management.yaml": "spec.serving.states",
    "v1beta2/docs_baas-integration_cron-input-kafka-output.yaml": "spec.serving.outputs[0].dapr",
    "v1beta2/docs_function-trigger_state-input.yaml": "spec.serving.triggers.inputs[0].dapr",
    "v1beta2/knative_java_with-output-binding_function-front.yaml": "spec.serving.outputs[0]",
}
ALL = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("v1beta*/*.yaml"))


def load(*files: Path | str, sources: dict[str, str] | None = None):
    return load_catalog([str(f) for f in files], [], sources or {})


def write(tmp_path: Path, text: str, name: str = "fn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def function(catalog, name: str):
    return catalog.get("Function", "default", name)


@pytest.mark.parametrize("fixture", ALL)
def test_every_fixture_loads_or_names_the_field(fixture: str) -> None:
    if fixture in REFUSED:
        with pytest.raises(ManifestErrors) as caught:
            load(FIXTURES / fixture)
        assert any(REFUSED[fixture] in str(e) for e in caught.value.errors), caught.value
        return
    catalog = load(FIXTURES / fixture)
    functions = [f for f in catalog.of_kind("Function") if view_of(f) is not None]
    assert len(functions) == 1
    assert "ok: no errors" in list(describe_catalog(catalog))[-1]


def test_go_samples_load_with_keda_and_bindings_shown_and_are_not_hostable() -> None:
    catalog = load(FIXTURES / "v1beta2/async_bindings_kafka-input_kafka-input.yaml")
    lines = "\n".join(describe_catalog(catalog))
    assert "builds Go" in lines and "use its URL as a sink" in lines
    assert "KEDA trigger kafka" in lines and "'lagThreshold': '20'" in lines
    assert "replicas: min 0, max 10" in lines
    assert "kafka event 'target-topic' -> topic default-kafka-input-target-topic" in lines
    component = catalog.get("Component", "default", "kafka-input-bindings-target-topic")
    assert component.resource.spec.type == "bindings.kafka"
    with pytest.raises(NotHostable, match="builds Go"):
        check_hostable(catalog.of_kind("Function"))


def test_v1beta1_is_read_as_openfunction_converts_it() -> None:
    catalog = load(FIXTURES / "v1beta1/async_bindings_kafka-input_kafka-input.yaml")
    spec = function(catalog, "kafka-input").resource.spec
    # the input's name (not the component's) is what the code and the topic use
    assert spec.input.topic == "default-kafka-input-greeting"
    # scaledObject.minReplicaCount/maxReplicaCount become the bounds; triggers move to keda
    assert (spec.scaleOptions.minReplicas, spec.scaleOptions.maxReplicas) == (0, 10)
    assert spec.scaleOptions.keda.triggers[0]["type"] == "kafka"
    assert "minReplicaCount" not in spec.scaleOptions.keda.scaledObject


SYNC = """\
apiVersion: core.openfunction.io/v1beta2
kind: Function
metadata:
  name: front
  annotations:
    plugins.tracing: "enabled: true"
spec:
  image: example/front:v1
  imageCredentials: {name: push-secret}
  build:
    builder: openfunction/gcp-builder:v1
    env: {GOOGLE_FUNCTION_TARGET: hello, GOOGLE_FUNCTION_SIGNATURE_TYPE: cloudevent}
    srcRepo: {url: "SRC", sourceSubPath: "sub", revision: main}
  serving:
    params: {GREETING: hi}
    annotations:
      openfunction.io/enable-dapr: "false"
      openfunction.io/dapr-service-mode: sidecar
    template: {containers: [{name: function}]}
    hooks: {pre: [plugin-a]}
    tracing: {enabled: true, provider: {name: skywalking}}
    workloadType: StatefulSet
    states:
      cache:
        spec:
          type: state.redis
          metadata: [{name: redisHost, value: "localhost:6379"}]
    outputs:
      - dapr: {name: kafka-server, operation: create, metadata: {key: k1}}
    bindings:
      kafka-server:
        type: bindings.kafka
        metadata:
          - {name: brokers, value: "localhost:9092"}
          - {name: publishTopic, value: sample-topic}
    triggers:
      http: {port: 8181}
"""


def sync_function(tmp_path: Path, url: str = "src") -> Path:
    code = tmp_path / "src" / "sub"
    code.mkdir(parents=True)
    (code / "main.py").write_text("def hello(event):\n    return 'hi'\n")
    return write(tmp_path, SYNC.replace("SRC", url))


def test_sync_function_fields_have_their_effect(tmp_path: Path) -> None:
    catalog = load(sync_function(tmp_path))
    item = function(catalog, "front")
    spec = item.resource.spec
    assert spec.input is None and spec.port == 8181
    assert Path(spec.source) == (tmp_path / "src" / "sub" / "main.py").resolve()
    assert (spec.target, spec.framework) == ("hello", "google-cloudevent")
    assert spec.env == {"GREETING": "hi"}
    assert spec.states == {"cache": "front-state-cache"}
    output = spec.outputs["kafka-server"]
    assert output.component == "front-bindings-kafka-server"
    assert (output.operation, output.metadata) == ("create", {"key": "k1"})
    assert view_of(item).annotations == {
        "openfunction.io/enable-dapr": "false",
        "openfunction.io/dapr-service-mode": "sidecar",
    }
    check_hostable([item])  # Python, local: nothing to refuse


@pytest.mark.parametrize(
    ("field", "why"),
    [
        ("spec.image", "for the cluster"),
        ("spec.imageCredentials", "for the cluster"),
        ("spec.build.srcRepo.revision", "for the cluster"),
        ("spec.serving.template", "not supported yet"),
        ("spec.serving.hooks", "not supported yet"),
        ("spec.serving.workloadType", "not supported yet"),
        ("spec.serving.tracing", "OTEL_*"),
        ("metadata.annotations.plugins.tracing", "--otlp-endpoint"),
        ("spec.serving.outputs[0].dapr.metadata", "recorded"),
    ],
)
def test_fields_not_honoured_are_warned_by_name(tmp_path: Path, field: str, why: str) -> None:
    warnings = load(sync_function(tmp_path)).warnings
    assert any(f": {field} " in w and why in w for w in warnings), warnings


def test_file_url_and_source_option(tmp_path: Path) -> None:
    path = sync_function(tmp_path, url=f"file://{tmp_path / 'src'}")
    spec = function(load(path), "front").resource.spec
    assert Path(spec.source).name == "main.py"
    other = tmp_path / "other.py"
    other.write_text("def hello(event):\n    return 'other'\n")
    spec = function(load(path, sources={"front": str(other)}), "front").resource.spec
    assert spec.source == str(other.resolve())
    with pytest.raises(ManifestErrors, match=r"no core\.openfunction\.io Function named 'back'"):
        load(path, sources={"back": str(other)})


def test_remote_code_needs_source(tmp_path: Path) -> None:
    path = sync_function(tmp_path, url="https://github.com/example/repo.git")
    item = function(load(path), "front")
    with pytest.raises(NotHostable, match="--source front=PATH"):
        check_hostable([item])


def test_bad_signature_type_names_the_field(tmp_path: Path) -> None:
    path = sync_function(tmp_path)
    path.write_text(path.read_text().replace("cloudevent}", "event}"))
    with pytest.raises(ManifestErrors, match="GOOGLE_FUNCTION_SIGNATURE_TYPE"):
        load(path)


PUBSUB = """\
apiVersion: core.openfunction.io/v1beta2
kind: Function
metadata: {name: sub}
spec:
  build:
    env: {FUNC_NAME: handle}
    srcRepo: {url: "."}
  serving:
    pubsub:
      bus:
        type: pubsub.redis
        metadata: [{name: redisHost, value: "localhost:6379"}]
    outputs:
      - dapr: {name: bus, topic: results}
    triggers:
      dapr:
        - {name: bus, topic: orders}
"""


def test_pubsub_input_and_output_are_topics_on_a_bus_of_that_component(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handle(context, event):\n    pass\n")
    catalog = load(write(tmp_path, PUBSUB))
    spec = function(catalog, "sub").resource.spec
    assert (spec.input.topic, spec.input.eventBus) == ("orders", "sub-pubsub-bus")
    assert spec.outputs["bus"].topic == "results"
    bus = catalog.get("EventBus", "default", "sub-pubsub-bus")
    assert bus.resource.spec.component == "sub-pubsub-bus"
    assert spec.framework == "ofn"


def test_state_store_must_be_redis_and_more_inputs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handle(context, event):\n    pass\n")
    text = PUBSUB.replace(
        "    outputs:", "    states:\n      db: {spec: {type: state.mysql}}\n    outputs:"
    )
    text = text.replace(
        "        - {name: bus, topic: orders}",
        "        - {name: bus, topic: a}\n        - {name: bus, topic: b}",
    )
    with pytest.raises(ManifestErrors) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    assert "spec.serving.states.db" in message and "state.redis" in message
    assert "spec.serving.triggers.dapr[1]" in message and "not supported yet" in message
