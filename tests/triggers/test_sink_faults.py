"""Sink faults at volume, counted, on the in-memory bus and on Redis Streams.

Every test counts what the sink served and what the trigger reports: nothing
may be lost, duplicates are counted (and none are expected: nothing here
crashes or outlives a redelivery timeout), and the failed-attempt metric must
match the failures the sink actually served.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import io
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from events.brokers.memory.bus import MemoryBus
from events.bus.contract import EventBus, Message, Subscription
from events.cloudevent import CloudEvent
from events.manifests.extensions import DeliverySpec
from tests.brokers.servers import free_port
from tests.bus.backends import bus_on
from tests.helpers import counter, nothing_within, until
from tests.sink import RecordingSink, Reply
from tests.triggers.harness import runner, subscriber

FLAKY_EVENTS = 500
FAILURE_RATE = 0.3


@dataclass
class Topics:
    """Unique topic names per test: Redis streams outlive a test."""

    input: str
    dead_letters: str
    replies: str


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.memory),
                        pytest.param("redis", marks=pytest.mark.redis)])  # fmt: skip
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    if request.param == "memory":
        started: EventBus = MemoryBus()
    else:
        broker = request.getfixturevalue("redis_broker")
        # a long processingTimeout: a slow delivery must not be reclaimed as a false duplicate
        settings = {"redisHost": broker.address, "processingTimeout": "30s"}
        started = bus_on("pubsub.redis", settings, pubsub_name="faults")
    async with started:
        yield started


@pytest.fixture
def topics() -> Topics:
    tag = uuid.uuid4().hex[:10]
    return Topics(f"faults-in-{tag}", f"faults-dlq-{tag}", f"faults-reply-{tag}")


def tick(n: int) -> CloudEvent:
    return CloudEvent.create("test.tick", "/tests/faults", {"n": n}, id=f"tick-{n:04d}")


async def drain(subscription: Subscription, count: int, timeout: float = 20.0) -> list[Message]:
    got = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            message = await anext(subscription)
            await message.ack()
            got.append(message)
    return got


async def test_a_flaky_sink_gets_exactly_every_event(bus: EventBus, topics: Topics) -> None:
    rng = random.Random(20261126)
    policy = DeliverySpec(retry=12, backoffPolicy="linear", backoffDelay=0.005, timeout=5)
    expected = {tick(n).id for n in range(FLAKY_EVENTS)}
    sink_replies = lambda n: Reply(500, body="flaky") if rng.random() < FAILURE_RATE else Reply()  # noqa: E731
    async with RecordingSink(sink_replies) as sink:
        dlq = await bus.subscribe(topics.dead_letters, "inspector")
        sub = subscriber(sink_url=sink.url, policy=policy, dead_letter_topic=topics.dead_letters)
        trig, ctx = runner(bus, [sub], {"a": topics.input})
        await trig.start()
        for n in range(FLAKY_EVENTS):
            await bus.publish(topics.input, tick(n))
        await sink.wait_for(FLAKY_EVENTS, timeout=60)
        await trig.stop()
        accepted = collections.Counter(e.id for e in sink.accepted)
        duplicates = {i: c - 1 for i, c in accepted.items() if c > 1}
        assert set(accepted) == expected, f"lost: {sorted(expected - set(accepted))[:10]}"
        assert not duplicates, f"{sum(duplicates.values())} duplicate deliveries: {duplicates}"
        assert 0.2 < sink.failures_served / len(sink.requests) < 0.4, "the fault was injected"
        assert counter(ctx.metrics, "failed_attempts", "ns/t", "0") == sink.failures_served
        assert counter(ctx.metrics, "delivered", "ns/t", "0") == FLAKY_EVENTS
        assert counter(ctx.metrics, "dead_lettered", "ns/t", "0") == 0
        assert len(sink.requests) == FLAKY_EVENTS + sink.failures_served
        assert await nothing_within(dlq, 0.3)
        await dlq.close()


async def test_a_hanging_sink_times_out_and_every_retry_succeeds(
    bus: EventBus, topics: Topics
) -> None:
    count, hang = 20, 2.0
    policy = DeliverySpec(retry=2, backoffPolicy="linear", backoffDelay=0.01, timeout=0.3)
    first_attempt_hangs = lambda event, seen: Reply(delay=hang if seen == 0 else 0)  # noqa: E731
    async with RecordingSink(by_event=first_attempt_hangs) as sink:
        sub = subscriber(sink_url=sink.url, policy=policy, dead_letter_topic=topics.dead_letters)
        trig, ctx = runner(bus, [sub], {"a": topics.input})
        await trig.start()
        start = time.monotonic()
        for n in range(count):
            await bus.publish(topics.input, tick(n))
        await sink.wait_for(count)
        elapsed = time.monotonic() - start
        await trig.stop()
        assert elapsed < hang, "each attempt was cut at the timeout, not waited out"
        assert sorted(e.id for e in sink.accepted) == sorted(tick(n).id for n in range(count))
        assert counter(ctx.metrics, "failed_attempts", "ns/t", "0") == count
        assert counter(ctx.metrics, "delivered", "ns/t", "0") == count
        assert all(sink.seen[tick(n).id] == 2 for n in range(count))


@pytest.mark.parametrize("down", ["refused", "503"])
async def test_a_sink_down_longer_than_the_policy_dead_letters_everything(
    bus: EventBus, topics: Topics, down: str
) -> None:
    count = 30
    policy = DeliverySpec(retry=2, backoffPolicy="linear", backoffDelay=0.01, timeout=2)
    async with RecordingSink(lambda n: Reply(503, body="maintenance")) as sink:
        url = sink.url if down == "503" else f"http://127.0.0.1:{free_port()}/"
        dlq = await bus.subscribe(topics.dead_letters, "inspector")
        sub = subscriber(sink_url=url, policy=policy, dead_letter_topic=topics.dead_letters)
        trig, ctx = runner(bus, [sub], {"a": topics.input})
        await trig.start()
        for n in range(count):
            await bus.publish(topics.input, tick(n))
        letters = [m.event for m in await drain(dlq, count)]
        await trig.stop()
        assert sorted(e.id for e in letters) == sorted(tick(n).id for n in range(count))
        for letter in letters:
            ext = letter.extensions
            assert letter.data == {"n": int(letter.id[5:])}, "the event itself is unchanged"
            assert ext["knativeerrordest"] == url
            assert ext["fnerrorattempts"] == 3
            if down == "503":
                assert ext["knativeerrorcode"] == "503"
                assert base64.b64decode(ext["knativeerrordata"]) == b"maintenance"
                assert "answered HTTP 503" in ext["fnerrorreason"]
            else:
                assert "knativeerrorcode" not in ext and "knativeerrordata" not in ext
                assert ext["fnerrorreason"].startswith(f"cannot reach {url}")
        assert counter(ctx.metrics, "dead_lettered", "ns/t", "0") == count
        assert counter(ctx.metrics, "failed_attempts", "ns/t", "0") == 3 * count
        assert counter(ctx.metrics, "delivered", "ns/t", "0") == 0
        assert len(sink.requests) == (3 * count if down == "503" else 0)
        assert await nothing_within(dlq, 0.3), "one dead letter per event"
        await dlq.close()


@pytest.mark.redis
async def test_a_refused_reply_publish_redelivers_the_event(redis_broker: Any) -> None:
    """A real refusal: the reply topic's key holds a string, so XADD fails (WRONGTYPE)."""
    settings = {"redisHost": redis_broker.address}
    tag = uuid.uuid4().hex[:10]
    in_topic, reply_topic = f"faults-in-{tag}", f"faults-reply-{tag}"
    host, port = redis_broker.address.rsplit(":", 1)
    admin = Redis(host=host, port=int(port))
    await admin.set(reply_topic, "not a stream")
    answer = CloudEvent.create("test.answer", "/fn", {"ok": True}, id="answer-1")
    async with (
        bus_on("pubsub.redis", settings, pubsub_name="faults") as bus,
        RecordingSink(lambda n: Reply(200, event=answer)) as sink,
    ):
        sub = subscriber(sink_url=sink.url, reply_topic=reply_topic)
        console = io.StringIO()
        trig, ctx = runner(bus, [sub], {"a": in_topic}, output=console)
        await trig.start()
        await bus.publish(in_topic, tick(1))
        await until(lambda: "redelivering" in console.getvalue(), "the trigger nacked it", 10)
        assert counter(ctx.metrics, "replies", "ns/t", "0") == 0, (
            "the refused reply was not counted"
        )
        assert len(sink.accepted) == 1
        await admin.delete(reply_topic)
        reader = await bus.subscribe(reply_topic, "inspector")
        await sink.wait_for(2, timeout=10)  # the nacked event came back to the sink
        (message,) = await drain(reader, 1)
        await trig.stop()
        assert message.event.id == "answer-1"
        assert [e.id for e in sink.accepted] == ["tick-0001", "tick-0001"], "at least once"
        assert counter(ctx.metrics, "replies", "ns/t", "0") == 1
        assert "WRONGTYPE" in console.getvalue(), console.getvalue()
        await reader.close()
    await admin.aclose()
