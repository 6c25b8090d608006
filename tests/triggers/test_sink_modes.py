"""Sink modes, the per-subscriber in-flight limit, and replies, over real HTTP and buses."""

from __future__ import annotations

import asyncio
import io

import pytest

from events.brokers.memory.bus import MemoryBus
from events.cloudevent import CloudEvent
from events.delivery.outlets import OutletPlan, build_outlet
from events.delivery.sinks import SinkClient
from events.manifests.extensions import DeliverySpec
from events.observability.console import Console
from events.observability.metrics import Metrics
from sources.contract import SourceIdentity
from tests.helpers import counter, nothing_within, receive
from tests.sink import RecordingSink, Reply
from tests.triggers.harness import FAST, OwnedTrigger, runner, subscriber
from triggers.subscriber import DeliveryContext

TIME = "2026-01-02T03:04:05Z"


def tick(n: int = 1) -> CloudEvent:
    return CloudEvent.create(
        "test.tick", "/tests", {"n": n}, id=f"tick-{n}", time=TIME, tenant="acme"
    )


def answer(n: int = 1) -> CloudEvent:
    return CloudEvent.create("test.answer", "/fn", {"doubled": 2 * n}, id=f"answer-{n}", time=TIME)


async def _one_delivery(
    sink: RecordingSink,
    policy: DeliverySpec = FAST,
    replies: bool = False,
    output: io.StringIO | None = None,
) -> tuple[DeliveryContext, bool]:
    """Event ``tick()`` through trigger ``ns/t`` to ``sink`` on a fresh in-memory bus,
    printing to ``output``: the trigger's context, and (if ``replies``) whether its reply
    topic stayed empty."""
    bus = MemoryBus()
    reply_topic = await bus.subscribe("ns-t-reply", "inspector") if replies else None
    subs = [subscriber(sink_url=sink.url, policy=policy)]
    trig, ctx = runner(bus, subs, {"a": "in"}, output=output)
    await trig.start()
    await bus.publish("in", tick())
    await sink.wait_for(1)
    await trig.stop()
    no_reply = reply_topic is None or await nothing_within(reply_topic, 0.3)
    await bus.close()
    return ctx, no_reply


@pytest.mark.parametrize(
    ("fmt", "mode"), [("binary", "binary"), ("structured", "structured"), ("json", "structured")]
)
async def test_the_delivery_format_picks_the_http_mode(fmt: str, mode: str) -> None:
    async with RecordingSink() as sink:
        await _one_delivery(sink, FAST.model_copy(update={"format": fmt}))
        assert sink.modes == [mode]
        (got,) = sink.accepted
        assert got == tick(), "the event arrives whole in either mode"


async def test_binary_is_the_default_mode() -> None:
    async with RecordingSink() as sink:
        await _one_delivery(sink, DeliverySpec(backoffDelay=0.01))
        assert sink.modes == ["binary"]


async def test_a_source_sink_uses_the_structured_mode_too() -> None:
    plan = OutletPlan(
        identity=SourceIdentity("ns", "src", "e"),
        bus=None,
        topic="unused",
        dead_letter_topic="unused",
        sink_url=None,
        dead_letter_url=None,
        delivery=DeliverySpec(format="structured", backoffDelay=0.01),
    )
    sinks = SinkClient()
    async with RecordingSink(lambda n: Reply(503) if n == 0 else Reply()) as sink:
        plan.sink_url = sink.url
        outlet = build_outlet(plan, sinks, Metrics(), Console(stream=io.StringIO()))
        await outlet.emit(tick())
        await sinks.close()
        assert sink.modes == ["structured", "structured"], "retried, in the same mode"
        assert sink.accepted == [tick()]


def _backlog(bus: MemoryBus, topic: str, group: str) -> tuple[int, int]:
    """(events not yet handed to any member, events not yet acked) of one group.

    Read from the in-memory bus's state: it has no public gauge for this."""
    state = bus._groups[topic][group]
    return len(state.ready), state.outstanding


async def test_max_in_flight_holds_the_sink_and_the_bus_back() -> None:
    limit, trigger_slots, total = 3, 8, 30
    async with RecordingSink() as sink:
        sink.gate = asyncio.Event()
        bus = MemoryBus()
        ctx = DeliveryContext(bus, SinkClient(), Metrics(), Console(stream=io.StringIO()))
        subs = [subscriber(sink_url=sink.url, max_in_flight=limit)]
        trig = OwnedTrigger("ns/t", {"a": "in"}, subs, 60.0, "ns-t", ctx, trigger_slots)
        await trig.start()
        for n in range(total):
            await bus.publish("in", tick(n))
        await sink.wait_for_requests(limit)
        await asyncio.sleep(0.5)  # time for anything that would break the limit to show up
        assert (sink.in_flight, sink.max_in_flight, len(sink.requests)) == (limit, limit, limit)
        unread, unacked = _backlog(bus, "in", "ns-t")
        # the consumer holds its slots' worth plus the one message it waits to start
        assert unread == total - trigger_slots - 1, "the trigger stopped reading the bus"
        assert unacked == total, "nothing is acked while the sink holds the events"
        sink.gate.set()
        await sink.wait_for(total)
        await trig.stop()
        assert sink.max_in_flight == limit
        assert sorted(e.id for e in sink.accepted) == sorted(f"tick-{n}" for n in range(total))
        assert _backlog(bus, "in", "ns-t") == (0, 0)
        await bus.close()


async def test_retries_hold_their_slot() -> None:
    # every event fails once (answers 503, then 200): with one slot the sink never
    # sees two requests at once, even while the first event waits out its backoff
    policy = DeliverySpec(retry=2, backoffPolicy="linear", backoffDelay=0.05, timeout=2)
    replies = {}

    def reply(n: int) -> Reply:
        return replies.setdefault(n, Reply(503) if n % 2 == 0 else Reply())

    async with RecordingSink(reply) as sink:
        bus = MemoryBus()
        subs = [subscriber(sink_url=sink.url, max_in_flight=1, policy=policy)]
        trig, ctx = runner(bus, subs, {"a": "in"})
        await trig.start()
        for n in range(5):
            await bus.publish("in", tick(n))
        await sink.wait_for(5)
        await trig.stop()
        assert sink.max_in_flight == 1
        ids = [e.id for e in sink.requests]
        assert ids == [i for n in range(5) for i in (f"tick-{n}",) * 2], "one event at a time"
        assert counter(ctx.metrics, "failed_attempts", "ns/t", "0") == 5
        await bus.close()


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
async def test_a_cloudevent_reply_goes_to_the_reply_topic(structured: bool) -> None:
    async with RecordingSink(lambda n: Reply(200, event=answer(), structured=structured)) as sink:
        bus = MemoryBus()
        replies = await bus.subscribe("ns-t-reply", "inspector")
        output = io.StringIO()
        trig, ctx = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"}, output=output)
        await trig.start()
        await bus.publish("in", tick())
        message = await receive(replies, 5)
        await message.ack()
        await trig.stop()
        assert message.event == answer()
        assert counter(ctx.metrics, "replies", "ns/t", "0") == 1
        assert counter(ctx.metrics, "delivered", "ns/t", "0") == 1
        assert "replied" in output.getvalue()
        await bus.close()


async def test_a_configured_reply_topic_is_used() -> None:
    async with RecordingSink(lambda n: Reply(200, event=answer())) as sink:
        bus = MemoryBus()
        replies = await bus.subscribe("answers", "inspector")
        trig, _ = runner(bus, [subscriber(sink_url=sink.url, reply_topic="answers")], {"a": "in"})
        await trig.start()
        await bus.publish("in", tick())
        message = await receive(replies, 5)
        await message.ack()
        await trig.stop()
        assert message.event.id == "answer-1"
        await bus.close()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, body='{"ok": true}', headers={"Content-Type": "application/json"}),
        Reply(204),
        Reply(202, body="queued"),
    ],
    ids=["json", "no-content", "text"],
)
async def test_a_plain_answer_is_not_a_reply(reply: Reply) -> None:
    async with RecordingSink(lambda n: reply) as sink:
        output = io.StringIO()
        ctx, no_reply = await _one_delivery(sink, replies=True, output=output)
        assert no_reply
        assert counter(ctx.metrics, "replies", "ns/t", "0") == 0
        assert "warning" not in output.getvalue()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(200, body="{not json", headers={"Content-Type": "application/cloudevents+json"}),
         "is not valid JSON"),
        (Reply(200, body="x", headers={"ce-specversion": "1.0", "ce-source": "/fn"}),
         "invalid CloudEvent attribute"),
        (Reply(200, body="{}", headers={"Content-Type": "application/cloudevents+json"}),
         "invalid CloudEvent attribute"),
    ],
    ids=["structured-not-json", "binary-without-id", "structured-empty"],
)  # fmt: skip
async def test_an_invalid_reply_is_warned_about_counted_and_dropped(
    reply: Reply, reason: str
) -> None:
    async with RecordingSink(lambda n: reply) as sink:
        stream = io.StringIO()
        ctx, no_reply = await _one_delivery(sink, replies=True, output=stream)
        assert no_reply
        output = stream.getvalue()
        assert "answered with an invalid CloudEvent" in output and reason in output, output
        text = ctx.metrics.exposition().decode()
        assert 'fnevents_invalid_replies_total{subscriber="0",trigger="ns/t"} 1.0' in text
        assert counter(ctx.metrics, "delivered", "ns/t", "0") == 1, "still delivered"
        assert len(sink.requests) == 1, "not retried: the sink took the event"
