"""Sink delivery end to end over real HTTP: retry, dead letters, ack only after."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import time
from typing import Any

from events.brokers.memory.bus import MemoryBus
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.delivery.policy import MAX_RETRY_AFTER, wait_before
from events.delivery.sinks import parse_retry_after
from events.errors import DeliveryError
from events.manifests.extensions import DeliverySpec
from tests.helpers import counter, nothing_within, receive
from tests.sink import RecordingSink, Reply
from tests.triggers.harness import runner, subscriber
from triggers.subscriber import DeliveryContext


def tick(n: int = 1) -> CloudEvent:
    return CloudEvent.create("test.tick", "/tests", {"n": n}, id=f"tick-{n}")


async def dead_letters(bus: MemoryBus, topic: str = "ns-t-deadletter"):
    return await bus.subscribe(topic, "inspector")


async def delivered(sink: RecordingSink, policy: DeliverySpec) -> None:
    """Event ``tick()`` through trigger ``ns/t`` (delivery ``policy``) to ``sink`` on a fresh
    in-memory bus, until the sink accepted it."""
    bus = MemoryBus()
    trig, _ = runner(bus, [subscriber(sink_url=sink.url, policy=policy)], {"a": "in"})
    await trig.start()
    await bus.publish("in", tick())
    await sink.wait_for(1, timeout=5)
    await trig.stop()
    await bus.close()


async def dead_lettered(
    sink: RecordingSink, topic: str = "ns-t-deadletter", **settings: Any
) -> tuple[Message, DeliveryContext]:
    """Event ``tick()`` through trigger ``ns/t`` (subscriber ``settings``) to ``sink`` on a
    fresh in-memory bus, until it is on the dead-letter ``topic``: that message (acked),
    and the trigger's context."""
    bus = MemoryBus()
    dlq = await dead_letters(bus, topic)
    trig, ctx = runner(bus, [subscriber(sink_url=sink.url, **settings)], {"a": "in"})
    await trig.start()
    await bus.publish("in", tick())
    letter = await receive(dlq, 5)
    await letter.ack()
    await trig.stop()
    await bus.close()
    return letter, ctx


async def test_a_sink_that_fails_twice_gets_the_event_once() -> None:
    async with RecordingSink(lambda n: Reply(500) if n < 2 else Reply(200)) as sink:
        bus = MemoryBus()
        dlq = await dead_letters(bus)
        trig, ctx = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"})
        await trig.start()
        await bus.publish("in", tick())
        await sink.wait_for(1)
        await trig.stop()
        assert [e.id for e in sink.requests] == ["tick-1"] * 3
        assert [e.id for e in sink.accepted] == ["tick-1"]
        assert counter(ctx.metrics, "delivered", "ns/t", "0") == 1
        assert counter(ctx.metrics, "failed_attempts", "ns/t", "0") == 2
        assert await nothing_within(dlq, 0.2)
        await bus.close()


async def test_a_sink_that_always_fails_leads_to_a_dead_letter_with_the_error() -> None:
    async with RecordingSink(lambda n: Reply(500, body="database is down")) as sink:
        letter, ctx = await dead_lettered(sink)
        assert len(sink.requests) == 4, "the first try and 3 retries"
        event = letter.event
        assert (event.id, event.data) == ("tick-1", {"n": 1}), "the event itself is unchanged"
        assert event.extensions["knativeerrordest"] == sink.url
        assert event.extensions["knativeerrorcode"] == "500"
        assert base64.b64decode(event.extensions["knativeerrordata"]) == b"database is down"
        assert event.extensions["fnerrorattempts"] == 4
        assert "answered HTTP 500" in event.extensions["fnerrorreason"]
        assert counter(ctx.metrics, "dead_lettered", "ns/t", "0") == 1


async def test_a_dead_letter_sink_receives_the_failed_event() -> None:
    async with RecordingSink(lambda n: Reply(503)) as sink, RecordingSink() as graveyard:
        bus = MemoryBus()
        trig, _ = runner(
            bus, [subscriber(sink_url=sink.url, dead_letter_url=graveyard.url)], {"a": "in"}
        )
        await trig.start()
        await bus.publish("in", tick())
        await graveyard.wait_for(1)
        await trig.stop()
        (letter,) = graveyard.accepted
        assert letter.id == "tick-1" and letter.extensions["knativeerrorcode"] == "503"
        await bus.close()


async def test_a_configured_dead_letter_topic_is_used() -> None:
    async with RecordingSink(lambda n: Reply(500)) as sink:
        letter, _ = await dead_lettered(sink, "my-dlq", dead_letter_topic="my-dlq")
        assert letter.event.id == "tick-1"


async def test_a_4xx_is_not_retried() -> None:
    async with RecordingSink(lambda n: Reply(400, body="bad field")) as sink:
        letter, _ = await dead_lettered(sink)
        assert len(sink.requests) == 1
        assert letter.event.extensions["fnerrorattempts"] == 1


async def test_a_hanging_sink_times_out_and_the_retry_succeeds() -> None:
    policy = DeliverySpec(retry=2, backoffDelay=0.01, timeout=0.3)
    async with RecordingSink(lambda n: Reply(200, delay=1 if n == 0 else 0)) as sink:
        await delivered(sink, policy)
        assert len(sink.requests) == 2


async def test_retry_after_is_honoured() -> None:
    policy = DeliverySpec(retry=1, backoffDelay=0.01, timeout=2)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    def reply(n: int) -> Reply:
        times.append(loop.time())
        return Reply(429, headers={"Retry-After": "1"}) if n == 0 else Reply(200)

    async with RecordingSink(reply) as sink:
        await delivered(sink, policy)
        assert times[1] - times[0] >= 0.95


async def test_the_bus_message_is_acked_only_after_delivery() -> None:
    async with RecordingSink(lambda n: Reply(200, delay=1.5 if n == 0 else 0)) as sink:
        bus = MemoryBus()
        trig, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"})
        await trig.start()
        await bus.publish("in", tick())
        while not sink.requests:
            await asyncio.sleep(0.01)
        await trig.stop(drain_timeout=0.2)  # dies while the sink still holds the request
        # a new replica of the trigger (same group) gets the event again
        again, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"})
        await again.start()
        await sink.wait_for(1)
        await again.stop()
        assert [e.id for e in sink.requests] == ["tick-1", "tick-1"], "redelivered, not lost"
        await bus.close()


async def test_a_topic_subscriber_publishes_to_the_bus() -> None:
    bus = MemoryBus()
    out = await bus.subscribe("out", "reader")
    trig, ctx = runner(bus, [subscriber(topic="out")], {"a": "in"})
    await trig.start()
    await bus.publish("in", tick(7))
    message = await receive(out, 5)
    await message.ack()
    assert message.event.id == "tick-7"
    await trig.stop()
    assert counter(ctx.metrics, "delivered", "ns/t", "0") == 1
    await bus.close()


async def test_subscribers_are_independent_even_with_the_same_condition() -> None:
    async with RecordingSink() as first, RecordingSink() as second:
        bus = MemoryBus()
        subs = [subscriber(0, sink_url=first.url), subscriber(1, sink_url=second.url)]
        trig, _ = runner(bus, subs, {"a": "in"})
        await trig.start()
        await bus.publish("in", tick())
        await first.wait_for(1)
        await second.wait_for(1)
        await trig.stop()
        await bus.close()


async def test_a_sink_that_never_answers_dead_letters_with_a_timeout_reason() -> None:
    policy = DeliverySpec(retry=1, backoffDelay=0.01, timeout=0.2)
    async with RecordingSink(lambda n: Reply(200, delay=1)) as sink:
        letter, ctx = await dead_lettered(sink, policy=policy)
        ext = letter.event.extensions
        assert ext["fnerrorreason"] == f"no answer from {sink.url} within 0.2s"
        assert ext["fnerrorattempts"] == 2 and "knativeerrorcode" not in ext
        assert counter(ctx.metrics, "failed_attempts", "ns/t", "0") == 2


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(soon) <= 30
    assert parse_retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_long_retry_after_is_capped_and_a_short_one_does_not_cut_the_backoff() -> None:
    spec = DeliverySpec(retry=3, backoffPolicy="linear", backoffDelay=5)
    assert wait_before(spec, 2, DeliveryError("busy", retry_after=3600)) == MAX_RETRY_AFTER
    assert wait_before(spec, 2, DeliveryError("busy", retry_after=1)) == 5
    assert wait_before(spec, 3, DeliveryError("busy")) == 10
