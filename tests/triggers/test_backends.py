"""Delivery policy and dead letters on every bus backend of the conformance setup.

The buses are built exactly as ``tests/bus/test_conformance.py`` builds them (the
``BACKENDS`` cases and ``make_bus`` of ``tests/bus/conftest.py``, real brokers
from ``tests/conftest.py``), so ``pytest -m kafka tests/triggers`` runs one
backend. The point is what crosses each backend's wire format: a dead letter is
read back from the bus, and its error attributes must arrive whole -- typed ones
too (``fnerrorattempts`` stays an integer).
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from events.delivery.sinks import SinkClient
from events.manifests.extensions import DeliverySpec
from events.observability.console import Console
from events.observability.metrics import Metrics
from tests.bus.capabilities import require_broker
from tests.bus.conftest import BACKENDS, dapr_sidecar, make_bus  # noqa: F401 - a fixture
from tests.helpers import counter, nothing_within, received
from tests.sink import RecordingSink, Reply
from tests.triggers.harness import OwnedTrigger, subscriber
from triggers.subscriber import DeliveryContext

POLICY = DeliverySpec(retry=2, backoffPolicy="linear", backoffDelay=0.01, timeout=2)
RECEIVE_TIMEOUT = 20.0  # a Kafka group join on a busy 2-core machine takes a few seconds


@pytest.fixture(params=[pytest.param(name, marks=case.mark) for name, case in BACKENDS.items()])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def bus(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    fixture = BACKENDS[backend].broker_fixture
    broker = request.getfixturevalue(fixture) if fixture else None
    require_broker(backend, broker)
    async with make_bus(backend, broker) as started:
        yield started


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


def tick(tag: str) -> CloudEvent:
    return CloudEvent.create("test.tick", "/tests/backends", {"n": 1}, id=f"tick-{tag}")


async def start_trigger(bus: EventBus, tag: str, **sub: Any) -> tuple[OwnedTrigger, Metrics]:
    ctx = DeliveryContext(bus, SinkClient(), Metrics(), Console(stream=io.StringIO()))
    subs = [subscriber(policy=POLICY, dead_letter_topic=f"dlq-{tag}", **sub)]
    trig = OwnedTrigger("ns/t", {"a": f"in-{tag}"}, subs, 60.0, f"ns-t-{tag}", ctx)
    await trig.start()
    return trig, ctx.metrics


async def test_a_sink_failing_twice_then_succeeding_gets_the_event_once(
    bus: EventBus, tag: str
) -> None:
    async with RecordingSink(by_event=lambda e, seen: Reply(500) if seen < 2 else Reply()) as sink:
        dlq = await bus.subscribe(f"dlq-{tag}", "inspector")
        trig, metrics = await start_trigger(bus, tag, sink_url=sink.url)
        await bus.publish(f"in-{tag}", tick(tag))
        await sink.wait_for(1, timeout=RECEIVE_TIMEOUT)
        await trig.stop()
        assert [e.id for e in sink.requests] == [f"tick-{tag}"] * 3
        assert [e.id for e in sink.accepted] == [f"tick-{tag}"]
        assert (
            counter(metrics, "failed_attempts", "ns/t", "0"),
            counter(metrics, "delivered", "ns/t", "0"),
        ) == (2, 1)
        assert await nothing_within(dlq, 0.3)
        await dlq.close()


async def test_an_always_failing_sink_dead_letters_with_the_error_intact(
    bus: EventBus, tag: str
) -> None:
    async with RecordingSink(lambda n: Reply(502, body="upstream gone ✗")) as sink:
        dlq = await bus.subscribe(f"dlq-{tag}", "inspector")
        trig, metrics = await start_trigger(bus, tag, sink_url=sink.url)
        await bus.publish(f"in-{tag}", tick(tag))
        letter = await received(dlq, RECEIVE_TIMEOUT)
        await trig.stop()
        assert (letter.id, letter.type, letter.data) == (f"tick-{tag}", "test.tick", {"n": 1})
        ext = letter.extensions
        assert ext["knativeerrordest"] == sink.url
        assert ext["knativeerrorcode"] == "502"
        assert base64.b64decode(ext["knativeerrordata"]).decode() == "upstream gone ✗"
        assert ext["fnerrorreason"] == f"{sink.url} answered HTTP 502"
        assert ext["fnerrorattempts"] == 3 and type(ext["fnerrorattempts"]) is int
        assert len(sink.requests) == 3
        assert counter(metrics, "dead_lettered", "ns/t", "0") == 1
        assert await nothing_within(dlq, 0.3), "one dead letter"
        await dlq.close()


async def test_a_topic_subscriber_publishes_to_the_bus(bus: EventBus, tag: str) -> None:
    out = await bus.subscribe(f"out-{tag}", "reader")
    trig, metrics = await start_trigger(bus, tag, topic=f"out-{tag}")
    await bus.publish(f"in-{tag}", tick(tag))
    event = await received(out, RECEIVE_TIMEOUT)
    await trig.stop()
    assert event.id == f"tick-{tag}" and event.data == {"n": 1}
    assert counter(metrics, "delivered", "ns/t", "0") == 1
    await out.close()
