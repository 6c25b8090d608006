"""Trigger ``filter`` in manifests: compiled at load, errors named by field, shown by
``validate``, and routing events end to end through the Runtime to a real HTTP sink."""

from __future__ import annotations

import asyncio
import importlib.util
import io
from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.plans import plan_trigger
from events.app.runtime import Runtime
from events.cli.main import main
from events.cloudevent import CloudEvent
from events.errors import ManifestErrors
from events.observability.console import Console
from tests.helpers import counter
from tests.manifests import documents
from tests.manifests.documents import BUS, CRON_SOURCE
from tests.sink import RecordingSink


def trigger(input_filter: str, subscriber_filter: str) -> str:
    return documents.trigger(
        inputs=f"tick: {{eventSource: clock, event: tick, filter: {input_filter}}}",
        extra=f"    filter: {subscriber_filter}\n",
    )


def errors_for(path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(path)], [])
    return [str(e) for e in caught.value.errors]


def test_filters_are_compiled_at_load_under_their_trigger(write) -> None:
    path = write(
        BUS,
        CRON_SOURCE,
        trigger('{prefix: {subject: "cars/"}}', '{cel: "data.speed > 80.0"}'),
    )
    catalog = load_catalog([str(path)], [])
    plan = plan_trigger(catalog.get("Trigger", "default", "t1"))
    assert set(plan.input_filters) == {"tick"}
    assert [s.filter is not None for s in plan.subscribers] == [True]
    assert plan.input_filters["tick"].description == "prefix subject='cars/'"
    on_subscriber = plan.subscribers[0].filter
    fast = CloudEvent.create("t", "/s", {"speed": 90})
    assert on_subscriber.matches(fast)
    assert not on_subscriber.matches(fast.evolve(data={"speed": 79.9}))


def test_a_cel_syntax_error_names_file_field_expression_and_column(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger('{cel: "data.speed >> 80"}', '{exact: {type: "t"}}'))
    (message,) = errors_for(path)
    assert message.startswith(f"{path}, document 3, Trigger/t1, ")
    assert "field 'spec.inputs.tick.filter.cel': filter 'data.speed >> 80' does not compile" in (
        message
    )
    assert "at column 13" in message
    assert message.endswith("\n    data.speed >> 80\n" + " " * 16 + "^")


def test_an_unknown_variable_names_the_subscriber_field_and_the_allowed_ones(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger('{exact: {type: "t"}}', '{cel: "payload.speed > 80"}'))
    (message,) = errors_for(path)
    assert "Trigger/t1, field 'spec.subscribers[0].filter.cel'" in message
    assert "uses unknown variable(s) 'payload' at column 1" in message
    assert "a filter can use: 'event'" in message and "'data'" in message


def test_every_bad_filter_is_reported_in_one_pass(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger('{cel: "("}', '{cel: "x == 1"}'))
    fields = [m.split("field '")[1].split("'")[0] for m in errors_for(path)]
    assert fields == ["spec.inputs.tick.filter.cel", "spec.subscribers[0].filter.cel"]


def test_a_bad_attribute_name_names_the_field_and_shows_good_ones(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger('{exact: {Type: "t"}}', '{exact: {type: "t"}}'))
    (message,) = errors_for(path)
    assert "field 'spec.inputs.tick.filter.exact'" in message
    assert "'Type' is not a CloudEvents attribute name" in message
    assert "e.g. 'type'" in message


def test_an_empty_filter_is_refused(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger('{exact: {type: "t"}}', "{}"))
    (message,) = errors_for(path)
    assert "field 'spec.subscribers[0].filter'" in message
    assert "an empty filter passes everything" in message


def test_validate_shows_each_filter_under_its_input_and_subscriber(write, capsys) -> None:
    path = write(
        BUS,
        CRON_SOURCE,
        trigger('{exact: {type: "t"}, suffix: {subject: "/a"}}', '{cel: "data.ok"}'),
    )
    assert main(["validate", "-f", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("      input tick <- topic default-clock-tick")
    assert lines[at + 1] == "        filter: exact type='t', suffix subject='/a'"
    sub = next(i for i, line in enumerate(lines) if "subscriber 0 when [tick]" in line)
    assert lines[sub + 1] == "        filter: cel 'data.ok'"


ROUTING = (
    documents.EMBEDDED_BUS
    + documents.hourly_source("vehicles", "telemetry")
    + """\
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: speeding}}
spec:
  eventBus: default
  inputs:
    telemetry:
      eventSource: vehicles
      event: telemetry
      filter:
        exact: {{type: com.example.telemetry}}
  subscribers:
  - condition: telemetry
    sink: {{uri: "{alerts}"}}
    filter:
      prefix: {{subject: vehicles/}}
      cel: data.speed > 80.0 && event.fleet == "north"
  - condition: telemetry
    sink: {{uri: "{everything}"}}
"""
)


async def test_filters_route_events_through_the_runtime_to_a_real_sink(tmp_path) -> None:
    async with RecordingSink() as alerts, RecordingSink() as everything:
        path = tmp_path / "routing.yaml"
        path.write_text(ROUTING.format(alerts=alerts.url, everything=everything.url))
        output = io.StringIO()
        runtime = Runtime(load_catalog([str(path)], []), Console(stream=output))
        await runtime.start()
        try:
            bus = next(iter(runtime.buses.values()))
            for event in routed_events():
                await bus.publish("default-vehicles-telemetry", event)
            await asyncio.gather(alerts.wait_for(2), everything.wait_for(6))
        finally:
            # stopping drains deliveries in flight, so a wrongly routed event would be seen
            await runtime.stop(drain_timeout=2)
        assert sorted(e.id for e in alerts.accepted) == ["fast-double", "fast-int"]
        assert {e.id for e in everything.accepted} == {
            "fast-int",
            "fast-double",
            "slow",
            "south",
            "no-speed",
            "last",
        }
        assert next(e for e in alerts.accepted if e.id == "fast-int").data == {"speed": 90}
        metrics = runtime.metrics
        trigger_labels = ("default/speeding",)
        assert counter(metrics, "filtered", *trigger_labels, "inputs.telemetry") == 1
        assert counter(metrics, "filtered", *trigger_labels, "subscribers[0]") == 4
        assert counter(metrics, "filter_errors", *trigger_labels, "subscribers[0]") == 1
        text = output.getvalue()
        assert "warning: trigger default/speeding: filter subscribers[0]" in text
        assert "event id=no-speed" in text


def routed_events() -> list[CloudEvent]:
    def event(id: str, data, type="com.example.telemetry", fleet="north", subject="vehicles/v1"):
        return CloudEvent.create(type, "/cars", data, id=id, fleet=fleet, subject=subject)

    return [
        event("fast-int", {"speed": 90}),  # an int against 80.0
        event("fast-double", {"speed": 80.5}),
        event("slow", {"speed": 80}),
        event("south", {"speed": 120}, fleet="south"),
        event("no-speed", {"battery": 3}),  # an evaluation error: no match, counted
        event("not-telemetry", {"speed": 150}, type="com.example.alert"),  # dropped at input
        event("last", {"speed": 130}, subject="trucks/t1"),
    ]


def test_the_vehicle_example_filter_passes_readings_and_keeps_out_the_rest() -> None:
    example = Path(__file__).parents[2] / "examples" / "vehicle-telemetry"
    catalog = load_catalog([str(example)], [])
    usable = plan_trigger(catalog.get("Trigger", "default", "telemetry")).input_filters["telemetry"]
    simulator = load_module(example / "simulate.py")
    readings = simulator.readings(3)
    for _ in range(6):
        assert usable.matches(message(next(readings)))
    for data in ({"vehicleId": "v1", "speed": 50}, "not json", None):
        assert not usable.matches(message(data))


def message(data) -> CloudEvent:
    return CloudEvent.create("dev.fnevents.mqtt.message", "mqtt://localhost/vehicles/v1", data)


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
