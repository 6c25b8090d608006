"""Load-time and start-time errors of Functions: outputs, binding Components, --only, addresses."""

from __future__ import annotations

import io

import pytest

from events.app.load import load_catalog
from events.app.roles import RoleError, Roles
from events.app.runtime import Runtime
from events.cli.main import main
from events.errors import ManifestErrors
from events.functions.address import FunctionAddressError
from events.observability.console import Console
from tests.functions import harness
from tests.functions.harness import kafka_binding
from tests.manifests.documents import BUS, CRON_SOURCE


def function(name: str = "fn", extra: str = "") -> str:
    return harness.function(name, "handle", extra)


def errors_of(tmp_path, *documents: str) -> list[str]:
    (tmp_path / "functions.py").write_text("def handle(event):\n    return None\n")
    path = tmp_path / "app.yaml"
    path.write_text("---".join(documents))
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(path)], [])
    return [str(error) for error in caught.value.errors]


def outputs(spec: str) -> str:
    return function(extra=f"  outputs:\n    out: {spec}\n")


BINDING = kafka_binding("kafka-out", "localhost:9092", "t")


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        ("{component: kafka-out, eventBus: default}", "spec.outputs.out", "not both"),
        ("{eventBus: default}", "spec.outputs.out", "an output needs 'topic'"),
        ("{component: nope}", "spec.outputs.out.component", "Component 'nope' not found"),
        ("{component: eventbus}", "spec.outputs.out.component", "must be an output binding"),
    ],
)
def test_an_output_is_a_bus_topic_or_a_binding(tmp_path, spec, field, problem) -> None:
    bus_component = (
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: eventbus}\n"
        "spec: {type: pubsub.in-memory}\n"
    )
    (error,) = errors_of(tmp_path, BUS, BINDING, bus_component, outputs(spec))
    assert "app.yaml" in error and "Function/fn" in error
    assert f"field '{field}'" in error
    assert problem in error


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"brokerz": "x"},
            "unknown metadata 'brokerz' for bindings.kafka; did you mean 'brokers'?",
        ),
        ({"zzz": "x"}, "unknown metadata 'zzz' for bindings.kafka; known names: "),
        ({"authType": "password"}, "metadata 'saslUsername': required when authType"),
        ({"authRequired": "true"}, "metadata 'saslUsername': required when authType"),
        ({"direction": "input"}, "metadata 'direction': is 'input'"),
        ({"authType": "oidc"}, "authType 'oidc' is not supported"),
    ],
)
def test_bad_binding_metadata_names_the_component_and_field(tmp_path, extra, problem) -> None:
    binding = kafka_binding("kafka-out", "localhost:9092", "t", **extra)
    (error,) = errors_of(tmp_path, BUS, binding, outputs("{component: kafka-out}"))
    assert "Component/kafka-out" in error and "field 'spec.metadata'" in error
    assert problem in error


def test_missing_brokers_and_a_missing_topic_are_load_errors(tmp_path) -> None:
    no_brokers = BINDING.replace("- {name: brokers, value: 'localhost:9092'}", "")
    (error,) = errors_of(tmp_path, BUS, no_brokers, outputs("{component: kafka-out}"))
    assert "metadata 'brokers' is required for bindings.kafka" in error
    no_topic = kafka_binding("kafka-out", "localhost:9092", None)
    (error,) = errors_of(tmp_path, BUS, no_topic, outputs("{component: kafka-out}"))
    assert "field 'spec.outputs.out'" in error
    assert "add publishTopic to the Component or 'topic' to this output" in error


def test_a_components_override_replaces_the_binding(tmp_path) -> None:
    (tmp_path / "functions.py").write_text("def handle(event):\n    return None\n")
    (tmp_path / "app.yaml").write_text(
        "---".join([BUS, BINDING, outputs("{component: kafka-out}")])
    )
    override = tmp_path / "override" / "kafka.yaml"
    override.parent.mkdir()
    override.write_text(kafka_binding("kafka-out", "broker.example:9093", "moved"))
    catalog = load_catalog([str(tmp_path / "app.yaml")], [str(override)])
    component = catalog.get("Component", "default", "kafka-out")
    assert component.origin.file == str(override)


def catalog_with(tmp_path, *documents: str):
    (tmp_path / "functions.py").write_text("def handle(event):\n    return None\n")
    path = tmp_path / "app.yaml"
    path.write_text("---".join(documents))
    return load_catalog([str(path)], [])


TRIGGER = """
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {name: t1}
spec:
  eventBus: default
  inputs: {tick: {eventSource: clock, event: tick}}
  subscribers:
  - condition: tick
    sink: {ref: {apiVersion: core.openfunction.io/v1beta2, kind: Function, name: fn}}
"""


def test_only_names_roles_that_exist_and_lists_them_otherwise(tmp_path) -> None:
    catalog = catalog_with(tmp_path, BUS, CRON_SOURCE, TRIGGER, function())
    roles = Roles.parse(["trigger/t1", "function/default/fn"], catalog)
    assert catalog.get("Trigger", "default", "t1") in roles
    assert catalog.get("EventSource", "default", "clock") not in roles
    with pytest.raises(RoleError) as caught:
        Roles.parse(["function/nope"], catalog)
    assert str(caught.value) == (
        "--only function/nope: no Function of that name in the manifests; roles there: "
        "function/default/fn, source/default/clock, trigger/default/t1"
    )
    with pytest.raises(RoleError, match="expected function/NAME, trigger/NAME or source/NAME"):
        Roles.parse(["functions/fn"], catalog)


def test_the_cli_reports_a_bad_only_without_a_traceback(tmp_path, capsys) -> None:
    catalog_with(tmp_path, BUS, CRON_SOURCE, TRIGGER, function())
    code = main(["run", "-f", str(tmp_path / "app.yaml"), "--port", "0", "--only", "source/x"])
    assert code == 1
    assert "error: --only source/x: no EventSource of that name" in capsys.readouterr().err


async def run_only_trigger(catalog) -> Runtime:
    runtime = Runtime(
        catalog, Console(stream=io.StringIO()), roles=Roles.parse(["trigger/t1"], catalog)
    )
    try:
        await runtime.start()
    except BaseException:
        await runtime.stop()
        raise
    return runtime


async def test_a_sink_ref_to_a_function_elsewhere_needs_a_fixed_address(tmp_path) -> None:
    catalog = catalog_with(tmp_path, BUS, CRON_SOURCE, TRIGGER, function())
    with pytest.raises(FunctionAddressError) as caught:
        await run_only_trigger(catalog)
    message = str(caught.value)
    assert message.startswith("Function default/fn (")
    assert "has port 0" in message and "give it a fixed 'port'" in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  host: 0.0.0.0\n  port: 8099\n", "http://127.0.0.1:8099/"),
        ("  port: 8099\n  url: http://fn.default.svc:8080/\n", "http://fn.default.svc:8080/"),
    ],
)
async def test_a_function_elsewhere_is_reached_at_its_url_or_fixed_port(
    tmp_path, extra, expected
) -> None:
    catalog = catalog_with(tmp_path, BUS, CRON_SOURCE, TRIGGER, function(extra=extra))
    runtime = await run_only_trigger(catalog)
    try:
        assert runtime.functions == {} and runtime._sources == []
        assert [s.sink_url for s in runtime.triggers[0].subscribers] == [expected]
    finally:
        await runtime.stop()


async def test_a_sink_ref_to_an_async_function_says_to_use_a_topic(tmp_path) -> None:
    async_function = function(extra="  input: {topic: work}\n")
    catalog = catalog_with(tmp_path, BUS, CRON_SOURCE, TRIGGER, async_function)
    runtime = Runtime(catalog, Console(stream=io.StringIO()))
    with pytest.raises(FunctionAddressError, match=r"is an async function .* subscriber 'topic'"):
        await runtime.start()
    assert runtime.buses == {}, "refused before anything started"
    await runtime.stop()
