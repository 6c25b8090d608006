"""The MQTT source end to end against raw paho-mqtt on the same Mosquitto, in the same run.

The broker is a fresh Mosquitto on a free loopback port (no persistence,
``max_queued_messages`` raised so nothing is dropped, other settings at
Mosquitto's defaults). Without Mosquitto and ``mosquitto_pub`` it is skipped.

The producer, the same for both sides, is ``mosquitto_pub -l`` in its own
process: N vehicle-telemetry JSON messages (about 190 B each, all different),
one per line, QoS 1, to ``<prefix>/v1/telemetry``. It is written in C and
faster than either consumer, so the broker queues the backlog and what is
measured is how fast each side drains it.

ours: an ``fnevents`` Runtime as ``fnevents run`` builds it: the MQTT source
(``<prefix>/+/telemetry``, QoS 1, persistent session, PUBACK after each event is
on the bus) -> the in-memory bus -> a Trigger (input ``telemetry``, subscriber
``condition: telemetry`` publishing to topic ``out``) -> a consumer on ``out``
that counts and acks. Every message is decoded and wrapped as a CloudEvent.

raw (the ceiling): one paho-mqtt 2.x client as its documentation shows it
(network loop in its own thread, ``loop_start``) subscribed to the same filter
at QoS 1, with the same protocol version and, for MQTT 5, the same Receive
Maximum as the source; paho PUBACKs each message as soon as ``on_message``
returns; the callback only counts.

Each row: events/s from starting the producer to the last arrival (best of
``REPEATS``, the two sides interleaved), and the consumer process's CPU time per
event over the same run (the broker and producer are not counted).
"""

from __future__ import annotations

import asyncio
import gc
import io
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.mqtt_bus import mosquitto
from bench.report import Table, progress, sized
from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.brokers.mqtt import source as mqtt_source
from events.observability.console import Console
from tests.brokers import servers
from tests.manifests import documents

REPEATS = 2
TIMEOUT = 60.0
PROTOCOLS = ("5", "3.1.1")
OUT_TOPIC = "out"

MANIFESTS = (
    documents.bus(maxPending=100000)
    + """\
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: bench}}
spec:
  eventBus: default
  mqtt:
    telemetry:
      url: tcp://{address}
      topic: {prefix}/+/telemetry
      consumerID: {prefix}
      protocolVersion: "{protocol}"
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: bench}}
spec:
  eventBus: default
  inputs:
    telemetry: {{eventSource: bench, event: telemetry}}
  subscribers:
    - condition: telemetry
      topic: out
"""
)


def telemetry(n: int) -> bytes:
    """``n`` distinct telemetry readings, one JSON object per line."""
    lines = [
        orjson.dumps(
            {
                "vehicleId": f"v{i % 50:03d}",
                "seq": i,
                "speed": round(60 + (i % 90) * 0.7, 1),
                "battery": round(100 - (i % 100) * 0.9, 1),
                "lat": round(48.137 + (i % 1000) * 1e-5, 6),
                "lon": round(11.575 + (i % 1000) * 1e-5, 6),
                "timestamp": f"2024-05-01T12:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}."
                f"{i % 1000:03d}Z",
            }
        )
        for i in range(n)
    ]
    return b"\n".join(lines) + b"\n"


def produce(address: str, topic: str, lines: bytes) -> subprocess.Popen[bytes]:
    host, _, port = address.rpartition(":")
    process = subprocess.Popen(
        ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, "-l"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(lines)
    process.stdin.close()
    return process


def _finish(process: subprocess.Popen[bytes]) -> None:
    if process.wait(TIMEOUT) != 0:
        assert process.stderr is not None
        raise RuntimeError(f"mosquitto_pub failed: {process.stderr.read().decode()}")
    assert process.stderr is not None
    process.stderr.close()


# -- ours ---------------------------------------------------------------------------------


async def _ours(address: str, lines: bytes, n: int, protocol: str) -> tuple[float, float]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "bench.yaml"
        path.write_text(MANIFESTS.format(address=address, prefix=prefix, protocol=protocol))
        catalog = load_catalog([str(path)], [])
    runtime = Runtime(catalog, Console(stream=io.StringIO(), quiet=True))
    # a retained probe: the broker hands it to the source's new subscription, so its
    # arrival on ``out`` says the whole path is in place
    host, _, port = address.rpartition(":")
    probe = ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-r", "-m", "probe"]
    command = [*probe, "-t", f"{prefix}/probe/telemetry"]
    await asyncio.to_thread(subprocess.run, command, check=True, timeout=TIMEOUT)
    await runtime.start()
    try:
        bus = next(iter(runtime.buses.values()))
        out = await bus.subscribe(OUT_TOPIC, "bench")
        message = await asyncio.wait_for(anext(out), TIMEOUT)
        while message.event.data != "probe":
            message = await asyncio.wait_for(anext(out), TIMEOUT)
        await message.ack()
        clock = time.perf_counter
        start, cpu = clock(), time.process_time()
        producer = produce(address, f"{prefix}/v1/telemetry", lines)
        count, last = 0, start
        async with asyncio.timeout(TIMEOUT):
            while count < n:
                message = await anext(out)
                await message.ack()
                if message.event.data != "probe":
                    count += 1
                    last = clock()
        cpu = time.process_time() - cpu
        await asyncio.to_thread(_finish, producer)
        await out.close()
    finally:
        await runtime.stop(drain_timeout=1.0)
    return n / (last - start), cpu / n


# -- raw paho -----------------------------------------------------------------------------


def _raw(address: str, lines: bytes, n: int, protocol: str) -> tuple[float, float]:
    host, _, port = address.rpartition(":")
    prefix = f"r{uuid.uuid4().hex[:8]}"
    clock = time.perf_counter
    arrivals = [0, 0.0]
    done, subscribed = threading.Event(), threading.Event()

    def arrived(_client, _userdata, _message) -> None:
        arrivals[0] += 1
        if arrivals[0] == n:
            arrivals[1] = clock()
            done.set()

    v5 = protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=prefix,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
    )
    client.on_message = arrived
    client.on_subscribe = lambda *_: subscribed.set()
    properties = None
    if v5:
        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = mqtt_source.RECEIVE_MAXIMUM
    client.connect(host, int(port), properties=properties)
    client.loop_start()
    try:
        client.subscribe(f"{prefix}/+/telemetry", 1)
        if not subscribed.wait(TIMEOUT):
            raise RuntimeError("raw paho: no SUBACK")
        start, cpu = clock(), time.process_time()
        producer = produce(address, f"{prefix}/v1/telemetry", lines)
        if not done.wait(TIMEOUT):
            raise RuntimeError(f"raw paho: {arrivals[0]} of {n} arrived")
        cpu = time.process_time() - cpu
        _finish(producer)
    finally:
        client.disconnect()
        client.loop_stop()
    return n / (arrivals[1] - start), cpu / n


# -- the run ------------------------------------------------------------------------------


async def _run(address: str, quick: bool) -> list[Table]:
    n = sized(5_000 if quick else 20_000, 200)
    repeats = 1 if quick else REPEATS
    lines = telemetry(n)
    size = len(lines) // n - 1
    progress("mqtt source: warm-up")
    await _ours(address, telemetry(500), 500, "5")
    await asyncio.to_thread(_raw, address, telemetry(500), 500, "5")

    table = Table(
        f"mqtt source: Mosquitto -> MqttSource -> in-memory bus -> trigger -> topic, vs raw "
        f"paho receiving, QoS 1 (N={n:,} telemetry messages of ~{size} B; ratio = ours / raw)",
        "fnevents",
        "raw paho",
    )
    gc.collect()
    gc.freeze()
    try:
        for protocol in PROTOCOLS:  # issue 13's target holds for both versions
            ours_best = raw_best = 0.0
            ours_cpu = raw_cpu = float("inf")
            for rep in range(1, repeats + 1):
                progress(f"mqtt source: MQTT {protocol}, repeat {rep}/{repeats} (N={n:,})")
                rate, cpu = await asyncio.to_thread(_raw, address, lines, n, protocol)
                raw_best, raw_cpu = max(raw_best, rate), min(raw_cpu, cpu)
                rate, cpu = await _ours(address, lines, n, protocol)
                ours_best, ours_cpu = max(ours_best, rate), min(ours_cpu, cpu)
            table.add(
                f"MQTT {protocol}: end-to-end throughput (higher is better)",
                "events/s",
                ours_best,
                raw_best,
            )
            table.add(
                f"MQTT {protocol}: consumer CPU per event (lower is better)",
                "µs",
                ours_cpu * 1e6,
                raw_cpu * 1e6,
            )
    finally:
        gc.unfreeze()
    table.notes.append(
        f"best of {repeats}, interleaved; producer: mosquitto_pub -l, QoS 1, in its own process"
    )
    table.notes.append(
        f"ours: {mqtt_source.WORKERS} messages handled at once, PUBACK in order after the bus "
        f"has each event; MQTT 5 Receive Maximum {mqtt_source.RECEIVE_MAXIMUM} on both sides "
        "(3.1.1: Mosquitto's max_inflight_messages, 20)"
    )
    return [table]


def run(quick: bool = False) -> list[Table]:
    broker = mosquitto()
    if broker is None or shutil.which("mosquitto_pub") is None:
        progress(
            "mqtt source: skipped, needs mosquitto and mosquitto_pub (apt-get install "
            "mosquitto mosquitto-clients)"
        )
        return []
    with servers.running(broker) as running:
        return asyncio.run(_run(running.address, quick))
