"""Outputs to a Kafka binding Component, read back from a real broker (Tansu)."""

from __future__ import annotations

import io
import uuid

import aiohttp
import orjson
import pytest

from events.cloudevent import CloudEvent
from tests.functions.harness import (
    end_offset,
    function,
    kafka_binding,
    read_records,
    start,
    write_app,
)
from tests.helpers import receive
from tests.manifests.documents import BUS

pytestmark = pytest.mark.kafka

CODE = """
def forward(context, event):
    context.send("kafka", {"got": event.get_data()})
    context.send("elsewhere", "second")


def too_big(context, event):
    context.send("kafka", "x" * 4096)
"""


def sync(other: str) -> str:
    """Function ``forward``: outputs to the binding's topic and to ``other``."""
    return function(
        "forward",
        "forward",
        "  outputs:\n"
        "    kafka: {component: kafka-out}\n"
        f"    elsewhere: {{component: kafka-out, topic: {other}}}\n",
    )


ASYNC = function(
    "too-big",
    "too_big",
    """\
  input: {topic: big-in}
  maxDeliveries: 2
  outputs:
    kafka: {component: kafka-out}
""",
)


@pytest.fixture
def topic() -> str:
    return f"fn-out-{uuid.uuid4().hex[:8]}"


async def test_a_sync_function_answers_only_once_its_outputs_are_on_kafka(
    tmp_path, kafka_broker, topic
) -> None:
    other = f"{topic}-other"
    binding = kafka_binding("kafka-out", kafka_broker.address, topic)
    runtime = await start(write_app(tmp_path, CODE, BUS, binding, sync(other)))
    try:
        url = runtime.functions[("default", "forward")].url
        async with aiohttp.ClientSession() as session, session.post(url) as response:
            assert response.status == 204
        # at the answer, before anything else: the broker already holds both records
        assert await end_offset(kafka_broker.address, topic) == 1
        assert await end_offset(kafka_broker.address, other) == 1
        (record,) = await read_records(kafka_broker.address, topic, 1)
        (second,) = await read_records(kafka_broker.address, other, 1)
    finally:
        await runtime.stop()
    headers = {name: value.decode() for name, value in record.headers}
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "dev.fnevents.function.output"
    assert headers["ce_source"] == "/functions/default/forward"
    assert headers["ce_subject"] == "kafka"
    assert headers["content-type"] == "application/json"
    assert orjson.loads(record.value) == {"got": None}
    assert second.value == b"second"


async def test_one_producer_per_component_shared_and_closed_on_stop(
    tmp_path, kafka_broker, topic
) -> None:
    binding = kafka_binding("kafka-out", kafka_broker.address, topic)
    runtime = await start(write_app(tmp_path, CODE, BUS, binding, sync(topic + "-b"), ASYNC))
    bindings = {key: binding for key, (_, binding) in runtime.outputs._bindings.items()}
    await runtime.stop()
    assert list(bindings) == [("default", "kafka-out")]
    assert bindings[("default", "kafka-out")]._client.producer is None


async def test_an_input_whose_output_cannot_reach_kafka_is_never_acked(
    tmp_path, kafka_broker, topic
) -> None:
    """The record is larger than maxMessageBytes, so Kafka never takes it: the input is
    redelivered, then dead-lettered with the reason, and nothing is on the topic."""
    binding = kafka_binding("kafka-out", kafka_broker.address, topic, maxMessageBytes="1024")
    output = io.StringIO()
    runtime = await start(write_app(tmp_path, CODE, BUS, binding, ASYNC), output=output)
    try:
        bus = next(iter(runtime.buses.values()))
        dead = await bus.subscribe("default-too-big-deadletter", "test")
        await bus.publish("big-in", CloudEvent.create("job", "/t", {"n": 1}, id="big-1"))
        letter = await receive(dead, 15)
        await letter.ack()
    finally:
        await runtime.stop()
    assert letter.event.id == "big-1"
    assert letter.event.extensions["fnerrorattempts"] == 2
    reason = letter.event.extensions["fnerrorreason"]
    assert "failed on the last of 2 deliveries" in reason
    assert "MessageSizeTooLarge" in reason, "the producer's own error, not just 'gave up'"
    assert "bindings.kafka kafka-out" in output.getvalue()
    assert "MessageSizeTooLarge" in output.getvalue()
    assert await end_offset(kafka_broker.address, topic) == 0
