"""MqttBus against raw paho-mqtt on the same Mosquitto, in the same run.

The broker is a fresh Mosquitto (the machine's ``mosquitto`` binary) on a free
loopback port, no persistence, ``max_queued_messages`` raised so nothing is
dropped, other settings at Mosquitto's defaults (so at most 20 unacked QoS 1
messages in flight to each subscriber). Client and broker share the machine's
cores, as in ``local-brokers.md``. Without Mosquitto the benchmark is skipped.

ours: ``MqttBus.publish`` (QoS 1, returns on PUBACK) -> an ``MqttBus``
subscription (``$share/bench/<topic>``, persistent session, manual acks) ->
``await message.ack()`` (PUBACK). Events are CloudEvents with about 1 KB of JSON
data, encoded to the Dapr envelope on publish and decoded on receipt.

raw (the ceiling): paho-mqtt 2.x as its documentation shows it, each client
running its network loop in its own thread (``loop_start``): the same envelope
bytes, encoded before the clock starts, published with QoS 1 to the same
``$share/bench/<topic>`` subscription; paho acks each message as soon as its
``on_message`` returns, and nothing is decoded. So ``ours / raw`` includes our
CloudEvent encode and decode, the Dapr envelope, the asyncio bridge and the
per-message ack API.

Throughput: N events; events/s from the first publish to the last arrival; and the
client process's CPU time per event over the same run (all threads; the broker's
CPU is not counted), a steadier figure than the rate when other work shares the
cores.
Publishes are issued by 64 concurrent publisher tasks, each awaiting its
PUBACK before its next publish (raw: every ``publish`` issued at once, with paho
keeping 64 in flight and queueing the rest). Best of ``REPEATS``, interleaved.

Latency: one publisher paced at a fixed 500 ev/s; latency = arrival at the
consumer - the moment just before publish; first 5 % dropped as warm-up.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.pipeline import make_events
from bench.report import Table, progress, sized
from events.brokers.mqtt.bus import MqttBus, MqttSettings
from events.bus import envelope
from events.cloudevent import CloudEvent
from tests.brokers import servers

PUBLISHERS = 64
RATE = 500
REPEATS = 2
TIMEOUT = 120.0
GROUP = "bench"


def mosquitto() -> servers.Broker | None:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        return None

    def command(port: int, workdir: Path) -> list[str]:
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 1000000\n"
        )
        return [binary, "-c", str(config)]

    return servers.Broker("mosquitto-bench", command)


# -- ours ---------------------------------------------------------------------------------


async def _ours(address: str, events: list[CloudEvent], rate: float | None) -> list[float]:
    """Throughput run (rate None): [events/s]; paced run: sorted latencies in seconds."""
    topic = f"bench-ours-{uuid.uuid4().hex[:8]}"
    settings = MqttSettings(url=f"tcp://{address}", consumerID=f"b{uuid.uuid4().hex[:6]}")
    async with MqttBus(settings) as bus:
        sub = await bus.subscribe(topic, GROUP)
        arrivals: dict[str, float] = {}
        sent: dict[str, float] = {}
        clock = time.perf_counter

        async def consume() -> None:
            async for message in sub:
                arrivals[message.event.id] = clock()
                await message.ack()
                if len(arrivals) == len(events):
                    return

        async def publish(chunk: list[CloudEvent]) -> None:
            for event in chunk:
                await bus.publish(topic, event)

        consumer = asyncio.create_task(consume())
        start, cpu = clock(), time.process_time()
        if rate is None:
            await asyncio.gather(*(publish(events[i::PUBLISHERS]) for i in range(PUBLISHERS)))
        else:
            for i, event in enumerate(events):
                delay = start + i / rate - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[event.id] = clock()
                await bus.publish(topic, event)
        await asyncio.wait_for(consumer, TIMEOUT)
        cpu = time.process_time() - cpu
        await sub.close()
    if rate is None:
        return [len(events) / (max(arrivals.values()) - start), cpu / len(events)]
    skip = len(events) // 20
    return sorted(arrivals[e.id] - sent[e.id] for e in events[skip:])


# -- raw paho -----------------------------------------------------------------------------


def _raw(address: str, payloads: list[bytes], rate: float | None) -> list[float]:
    """The same measurements with plain paho clients in their own threads."""
    host, _, port = address.rpartition(":")
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    arrivals: list[float] = []
    done, subscribed = threading.Event(), threading.Event()
    clock, n = time.perf_counter, len(payloads)

    def arrived(_client, _userdata, _message) -> None:
        arrivals.append(clock())
        if len(arrivals) == n:
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-sub-{uuid.uuid4().hex[:8]}")
    sub.on_message = arrived
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(host, int(port))
    sub.loop_start()
    sub.subscribe(f"$share/{GROUP}/{topic}", 1)
    subscribed.wait(TIMEOUT)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-pub-{uuid.uuid4().hex[:8]}")
    pub.max_inflight_messages_set(PUBLISHERS)
    pub.max_queued_messages_set(0)
    pub.connect(host, int(port))
    pub.loop_start()
    sent: list[float] = []
    start, cpu = clock(), time.process_time()
    try:
        if rate is None:
            for payload in payloads:
                pub.publish(topic, payload, 1)
        else:
            for i, payload in enumerate(payloads):
                delay = start + i / rate - clock()
                if delay > 0:
                    time.sleep(delay)
                sent.append(clock())
                pub.publish(topic, payload, 1).wait_for_publish(TIMEOUT)
        if not done.wait(TIMEOUT):
            raise RuntimeError(f"raw paho: {len(arrivals)} of {n} arrived")
        cpu = time.process_time() - cpu
    finally:
        for client in (pub, sub):
            client.disconnect()
            client.loop_stop()
    if rate is None:
        return [n / (arrivals[-1] - start), cpu / n]
    skip = n // 20  # one subscriber, QoS 1, no redelivery: arrivals are in publish order
    return sorted(arrivals[i] - sent[i] for i in range(skip, n))


# -- the run ------------------------------------------------------------------------------


async def _run(address: str, quick: bool) -> list[Table]:
    n = sized(3_000 if quick else 10_000, 200)
    repeats = 1 if quick else REPEATS
    count = sized(int(RATE * (1.0 if quick else 3.0)), 50)
    events = make_events(n, "mqtt")
    payloads = [envelope.encode(e, "bench", "eventbus") for e in events]
    size = len(payloads[0])

    progress("mqtt: warm-up")
    await _ours(address, events[:500], None)
    await asyncio.to_thread(_raw, address, payloads[:500], None)

    ours_best = raw_best = 0.0
    ours_cpu = raw_cpu = float("inf")
    gc.collect()
    gc.freeze()
    try:
        for rep in range(1, repeats + 1):
            progress(f"mqtt: throughput repeat {rep}/{repeats} (N={n:,})")
            rate, cpu = await asyncio.to_thread(_raw, address, payloads, None)
            raw_best, raw_cpu = max(raw_best, rate), min(raw_cpu, cpu)
            rate, cpu = await _ours(address, events, None)
            ours_best, ours_cpu = max(ours_best, rate), min(ours_cpu, cpu)
        progress(f"mqtt: latency, {count:,} events at {RATE:,} ev/s")
        raw_latency = await asyncio.to_thread(_raw, address, payloads[:count], RATE)
        ours_latency = await _ours(address, events[:count], RATE)
    finally:
        gc.unfreeze()

    table = Table(
        f"mqtt: MqttBus publish -> subscribe -> ack vs raw paho-mqtt, Mosquitto, QoS 1 "
        f"(N={n:,}, envelope {size:,} B; ratio = ours / raw)",
        "MqttBus",
        "raw paho",
    )
    table.add(
        f"end-to-end throughput, {PUBLISHERS} publishes in flight (higher is better)",
        "events/s",
        ours_best,
        raw_best,
    )
    table.add(
        "client CPU per event in those runs (lower is better; steadier on a busy machine)",
        "µs",
        ours_cpu * 1e6,
        raw_cpu * 1e6,
    )
    table.add_latency(f"at {RATE:,} ev/s", ours_latency, raw_latency)
    table.notes.append(
        f"throughput: best of {repeats}, interleaved; ours: {PUBLISHERS} tasks each awaiting "
        f"its PUBACK; raw: all publishes issued at once, paho keeps {PUBLISHERS} in flight"
    )
    table.notes.append(
        f"latency: {count:,} events paced at {RATE} ev/s, one publisher awaiting each PUBACK, "
        "first 5 % dropped"
    )
    return [table]


def run(quick: bool = False) -> list[Table]:
    broker = mosquitto()
    if broker is None:
        progress("mqtt: skipped, Mosquitto is not installed (apt-get install mosquitto)")
        return []
    with servers.running(broker) as running:
        return asyncio.run(_run(running.address, quick))
