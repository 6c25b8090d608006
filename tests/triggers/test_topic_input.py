"""A Trigger input that reads a bus topic (the ``topic:`` extension), in manifests: how it
loads, the errors that name its fields, what ``validate`` shows, the warnings about
mistakes visible in the manifests, and what ``render`` makes of it.

The end-to-end run on every bus backend is ``tests/e2e/test_topic_input.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.plans import group_of, plan_trigger, topic_for
from events.cli.main import main
from events.cloudevent import CloudEvent
from events.errors import ManifestErrors
from tests.k8s.render_helper import ROOT, render
from tests.manifests.documents import BUS, CRON_SOURCE

FUNCTION = """
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {name: checkout}
spec:
  source: shop.py
  target: checkout
  outputs:
    orders: {topic: shop-orders, eventBus: %s}
"""


def trigger(inputs: str, subscriber: str = "topic: out", condition: str = "orders") -> str:
    return f"""
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: big-orders}}
spec:
  eventBus: default
  inputs:
{textwrap.indent(textwrap.dedent(inputs).strip(), "    ")}
  subscribers:
  - condition: "{condition}"
    {subscriber}
"""


def write(tmp_path: Path, *documents: str) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text("---\n".join(textwrap.dedent(d) for d in documents))
    return path


def errors_for(path: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(path)], [])
    return [str(e) for e in caught.value.errors]


def test_a_topic_input_reads_that_topic_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, BUS, trigger("orders: {topic: shop-orders}"))
    catalog = load_catalog([str(path)], [])
    plan = plan_trigger(catalog.get("Trigger", "default", "big-orders"))
    assert plan.inputs == {"orders": "shop-orders"}
    assert catalog.warnings == []  # a Dapr app may fill it: nothing need publish it here


def test_topic_and_eventsource_inputs_mix_under_one_condition(tmp_path: Path) -> None:
    inputs = """
    orders: {topic: shop-orders, filter: {cel: "data.total >= 100"}}
    tick: {eventSource: clock, event: tick}
    """
    path = write(tmp_path, BUS, CRON_SOURCE, trigger(inputs, condition="orders && tick"))
    plan = plan_trigger(load_catalog([str(path)], []).get("Trigger", "default", "big-orders"))
    assert plan.inputs == {"orders": "shop-orders", "tick": topic_for("default", "clock", "tick")}
    orders = plan.input_filters["orders"]
    assert orders.matches(CloudEvent.create("t", "/s", {"total": 100}))
    assert not orders.matches(CloudEvent.create("t", "/s", {"total": 99}))
    condition = plan.subscribers[0].condition
    assert condition.evaluate({"orders": True, "tick": True})
    assert not condition.evaluate({"orders": True, "tick": False})


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("{topic: shop-orders, eventSource: clock, event: tick}", "'eventSource' and 'event'"),
        ("{topic: shop-orders, event: tick}", "'event'"),
        ("{topic: shop-orders, namespace: other}", "'namespace'"),
    ],
)
def test_topic_with_an_eventsource_field_names_both(tmp_path: Path, given, named) -> None:
    path = write(tmp_path, BUS, CRON_SOURCE, trigger(f"orders: {given}"))
    (message,) = errors_for(path)
    assert message.startswith(f"{path}, document 3, Trigger/big-orders, ")
    assert "field 'spec.inputs.orders'" in message
    assert f"'topic' excludes {named}: an input reads either a bus topic" in message
    assert f"remove {named}, or 'topic'" in message


def test_an_input_with_neither_says_what_it_needs(tmp_path: Path) -> None:
    path = write(tmp_path, BUS, trigger('orders: {filter: {cel: "true"}}'))
    (message,) = errors_for(path)
    assert "field 'spec.inputs.orders'" in message
    assert "an input needs 'eventSource' and 'event' (an EventSource's event), or 'topic'" in (
        message
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("{eventSource: clock}", "'eventSource' needs 'event' too (or use 'topic' alone)"),
        ("{event: tick}", "'event' needs 'eventSource' too (or use 'topic' alone)"),
    ],
)
def test_half_an_eventsource_reference_names_the_missing_field(
    tmp_path: Path, given: str, expected: str
) -> None:
    path = write(tmp_path, BUS, CRON_SOURCE, trigger(f"orders: {given}"))
    (message,) = errors_for(path)
    assert "field 'spec.inputs.orders'" in message
    assert expected in message


def test_an_empty_topic_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, BUS, trigger('orders: {topic: ""}'))
    (message,) = errors_for(path)
    assert "field 'spec.inputs.orders.topic'" in message


def test_a_topic_input_is_still_named_by_an_identifier(tmp_path: Path) -> None:
    path = write(tmp_path, BUS, trigger("shop-orders: {topic: shop-orders}", condition="true"))
    (message,) = errors_for(path)
    assert "field 'spec.inputs'" in message
    assert "'shop-orders'" in message


def test_openfunction_inputs_load_unchanged(tmp_path: Path) -> None:
    inputs = "tick: {eventSource: clock, event: tick}"
    path = write(tmp_path, BUS, CRON_SOURCE, trigger(inputs, condition="tick"))
    item = load_catalog([str(path)], []).get("Trigger", "default", "big-orders")
    tick = item.resource.spec.inputs["tick"]
    assert (tick.eventSource, tick.event, tick.topic) == ("clock", "tick", None)
    assert plan_trigger(item).inputs == {"tick": "default-clock-tick"}


def test_validate_shows_the_topic_and_its_filter(tmp_path: Path, capsys) -> None:
    inputs = 'orders: {topic: shop-orders, filter: {cel: "data.total >= 100"}}'
    path = write(tmp_path, BUS, trigger(inputs))
    assert main(["validate", "-f", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("      input orders <- topic shop-orders")
    assert lines[at + 1] == "        filter: cel 'data.total >= 100'"


def test_a_function_output_on_another_bus_is_warned_about(tmp_path: Path) -> None:
    other_bus = BUS.replace("name: default", "name: other").replace(
        "spec: {}",
        "spec: {natsStreaming: {natsURL: 'nats://localhost:4222', "
        "natsStreamingClusterID: c, subscriptionType: queue, durableSubscriptionName: d}}",
    )
    (tmp_path / "shop.py").write_text("def checkout(context, event):\n    pass\n")
    path = write(
        tmp_path, BUS, other_bus, FUNCTION % "other", trigger("orders: {topic: shop-orders}")
    )
    catalog = load_catalog([str(path)], [])
    assert catalog.warnings == [
        "Trigger/big-orders: input 'orders' reads topic 'shop-orders', which Function/checkout "
        "output 'orders' publishes on EventBus 'other', not on the trigger's 'default'"
    ]
    same = write(tmp_path, BUS, FUNCTION % "default", trigger("orders: {topic: shop-orders}"))
    assert load_catalog([str(same)], []).warnings == []


def test_a_subscriber_publishing_on_its_own_input_is_warned_about(tmp_path: Path) -> None:
    path = write(tmp_path, BUS, trigger("orders: {topic: shop-orders}", "topic: shop-orders"))
    (warning,) = load_catalog([str(path)], []).warnings
    assert warning.startswith(
        "Trigger/big-orders: input 'orders' reads topic 'shop-orders', on which its own "
        "subscribers[0] publishes"
    )
    assert "a loop unless a filter or the condition stops it" in warning


def test_render_scales_a_topic_input_on_its_topic_and_the_triggers_group(tmp_path: Path) -> None:
    bus = BUS.replace("spec: {}", "spec: {component: eventbus}")
    path = write(tmp_path, bus, trigger("orders: {topic: shop-orders}"))
    rendered = render("-f", path, "--components", ROOT / "components" / "redis.yaml")
    scaled = rendered.of_kind("ScaledObject")["fnevents-trigger-default-big-orders"]
    (scaler,) = scaled["spec"]["triggers"]
    item = load_catalog([str(path)], [str(ROOT / "components" / "redis.yaml")]).get(
        "Trigger", "default", "big-orders"
    )
    assert scaler["type"] == "redis-streams"
    assert scaler["metadata"]["stream"] == "shop-orders"
    assert scaler["metadata"]["consumerGroup"] == group_of(item)
