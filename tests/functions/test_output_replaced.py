"""An output binding whose Component changed is replaced, not reused (a reload builds the
Functions' senders again): real Kafka bindings on a real broker (Tansu)."""

from __future__ import annotations

import io
import uuid

import pytest

from events.brokers.kafka.binding import KafkaBinding
from events.brokers.kafka.settings import KafkaBindingSettings
from events.cloudevent import CloudEvent
from events.functions.outputs import BindingTarget, Outputs
from events.observability.console import Console
from tests.functions.harness import end_offset, read_records

pytestmark = pytest.mark.kafka


def _target(brokers: str, topic: str) -> BindingTarget:
    settings = KafkaBindingSettings(brokers=brokers, publishTopic=topic)
    return BindingTarget(("default", "kafka-out"), "kafka-out", KafkaBinding, settings)


async def test_a_changed_component_gets_a_new_binding_and_the_old_one_is_closed(
    kafka_broker,
) -> None:
    brokers, run = kafka_broker.address, uuid.uuid4().hex[:8]
    first, second = f"first-{run}", f"second-{run}"
    said = io.StringIO()
    outputs = Outputs(Console(stream=said))
    try:
        send = await outputs.to_binding(_target(brokers, first), None)
        await send(CloudEvent.create("t", "/s", {"n": 1}, id="a"))
        again = await outputs.to_binding(_target(brokers, first), None)  # unchanged: reused
        await again(CloudEvent.create("t", "/s", {"n": 2}, id="b"))
        replaced = await outputs.to_binding(_target(brokers, second), None)
        await replaced(CloudEvent.create("t", "/s", {"n": 3}, id="c"))
    finally:
        await outputs.close()
    on_first = sorted(r.value for r in await read_records(brokers, first, 2))  # 2 partitions
    assert on_first == [b'{"n":1}', b'{"n":2}']
    assert [r.value for r in await read_records(brokers, second, 1)] == [b'{"n":3}']
    assert await end_offset(brokers, first) == 2, "the new binding sends to its own topic"
    lines = said.getvalue().splitlines()
    assert sum(line.startswith("output: bindings.kafka kafka-out") for line in lines) == 2
    assert any("output closed: bindings.kafka kafka-out" in line for line in lines), lines
