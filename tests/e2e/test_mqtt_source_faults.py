"""The MQTT source under faults: nothing published at QoS 1 is lost.

(a) ``kill -9`` of the ``fnevents run`` process mid-stream. Its bus is Redis
    (``pubsub.redis``), so what it published survives the kill; the MQTT
    session (persistent, fixed client id) keeps what it had not acked. A second
    process resumes the session. Every message arrives on the bus at least
    once; messages emitted but not yet acked at the kill arrive twice.
(b) A restart of the MQTT broker mid-stream (a Mosquitto of the test's own, with
    ``persistence true``). The source, in a Runtime, is slowed by its bus
    (``maxPending``) so the broker holds a backlog for its session at the
    restart; the runtime reconnects it with backoff; everything arrives.

Producers: ``mosquitto_pub -l`` (a), and paho with its own reconnects (b), since
mosquitto_pub does not resend what a broker restart cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.observability.console import Console
from tests.brokers import servers
from tests.bus.test_mqtt import persistent_mosquitto
from tests.e2e import processes
from tests.e2e.processes import read_until
from tests.manifests import documents

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.mqtt,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto_pub"),
]

N = 500
DEADLINE = 30.0

TOPIC = "default-fleet-telemetry"


def write_manifests(path: Path, mqtt: str, prefix: str, bus_type: str, **metadata: str) -> Path:
    spec = {"url": f"tcp://{mqtt}", "topic": f"{prefix}/+/telemetry", "consumerID": prefix}
    source = documents.eventsource("fleet", "mqtt", {"telemetry": spec})
    path.write_text(documents.bus(bus_type, **metadata) + source)
    return path


def publish(broker, topic: str, *options: str) -> None:
    host, _, port = broker.address.rpartition(":")
    command = ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, *options]
    subprocess.run(command, check=True, timeout=10)


class Tally:
    """What arrived on the bus, by the ``n`` in each message (probes left out)."""

    def __init__(self, subscription) -> None:
        self.subscription = subscription
        self.counts: dict[int, int] = {}
        self.probed = asyncio.Event()
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.subscription:
            data = message.event.data
            if isinstance(data, dict) and "n" in data:
                self.counts[data["n"]] = self.counts.get(data["n"], 0) + 1
            else:
                self.probed.set()  # the retained probe, or the empty message clearing it
            await message.ack()
            self._changed.set()

    async def until(self, distinct: int, timeout: float = DEADLINE) -> None:
        async with asyncio.timeout(timeout):
            while len(self.counts) < distinct:
                self._changed.clear()
                await self._changed.wait()

    def summary(self, expected: int) -> str:
        missing = sorted(set(range(expected)) - set(self.counts))
        duplicates = sum(c - 1 for c in self.counts.values())
        return f"{len(missing)} missing {missing[:20]}, {duplicates} duplicates"

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.subscription.close()


def line_producer(broker, topic: str) -> subprocess.Popen[bytes]:
    """``mosquitto_pub -l``: one QoS 1 message per line of its stdin."""
    host, _, port = broker.address.rpartition(":")
    command = ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, "-l"]
    return subprocess.Popen(command, stdin=subprocess.PIPE)


def paced_lines(process: subprocess.Popen[bytes], count: int, rate: float) -> None:
    """Feed ``mosquitto_pub -l`` one JSON line per message at ``rate`` a second."""
    assert process.stdin is not None
    start = time.monotonic()
    for n in range(count):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer, not synchronizing with it
        process.stdin.write(orjson.dumps({"n": n, "vehicleId": f"v{n % 7}"}) + b"\n")
        process.stdin.flush()
    process.stdin.close()


def fnevents_run(manifests: Path) -> subprocess.Popen[str]:
    return processes.piped("run", "-f", str(manifests), "--port", "0", "-q")


async def test_kill_9_of_the_source_process_mid_stream_loses_nothing(
    tmp_path, mqtt_broker, redis_broker
) -> None:
    if mqtt_broker.name == "amqtt":
        pytest.skip("needs Mosquitto (amqtt drops unacked messages of a lost client)")
    prefix = f"k{uuid.uuid4().hex[:10]}"
    manifests = write_manifests(
        tmp_path / "app.yaml",
        mqtt_broker.address,
        prefix,
        "pubsub.redis",
        redisHost=redis_broker.address,
    )
    bus = RedisBus(RedisSettings(redisHost=redis_broker.address))
    await bus.start()
    tally = Tally(await bus.subscribe(TOPIC, "faults-counter"))
    probe_topic = f"{prefix}/probe/telemetry"
    await asyncio.to_thread(publish, mqtt_broker, probe_topic, "-r", "-m", "probe")
    first = fnevents_run(manifests)
    second = None
    try:
        await asyncio.to_thread(read_until, first, r"source mqtt .* started")
        await asyncio.wait_for(tally.probed.wait(), DEADLINE)  # subscribed: the session exists
        await asyncio.to_thread(publish, mqtt_broker, probe_topic, "-r", "-n")
        producer = line_producer(mqtt_broker, f"{prefix}/v/telemetry")
        feeding = asyncio.create_task(asyncio.to_thread(paced_lines, producer, N, 1000))
        await tally.until(N // 5)
        first.kill()  # SIGKILL: no drain, no DISCONNECT, unacked messages stay with the broker
        at_kill = len(tally.counts)
        await asyncio.to_thread(first.wait, 10)
        second = fnevents_run(manifests)
        await feeding
        assert await asyncio.to_thread(producer.wait, 10) == 0
        with contextlib.suppress(TimeoutError):
            await tally.until(N)
    finally:
        for process in (first, second):
            if process is not None:
                processes.finish(process)  # and closes its stdout
        await tally.close()
        await bus.close()
    assert at_kill < N, f"the kill came after the whole stream ({at_kill} of {N})"
    assert set(tally.counts) == set(range(N)), tally.summary(N)
    print(f"kill -9 after {at_kill} of {N}: {tally.summary(N)}")


async def test_a_broker_restart_mid_stream_loses_nothing(tmp_path) -> None:
    prefix = f"r{uuid.uuid4().hex[:10]}"
    with servers.running(persistent_mosquitto()) as broker:
        manifests = write_manifests(
            tmp_path / "app.yaml", broker.address, prefix, "pubsub.in-memory", maxPending="20"
        )
        console = io.StringIO()
        runtime = Runtime(load_catalog([str(manifests)], []), Console(stream=console))
        probe_topic = f"{prefix}/probe/telemetry"
        await asyncio.to_thread(publish, broker, probe_topic, "-r", "-m", "probe")
        await runtime.start()
        bus = next(iter(runtime.buses.values()))
        tally = Tally(SlowReader(await bus.subscribe(TOPIC, "faults-counter")))
        producer = Producer(broker.address, f"{prefix}/v/telemetry")
        try:
            await asyncio.wait_for(tally.probed.wait(), DEADLINE)
            await asyncio.to_thread(publish, broker, probe_topic, "-r", "-n")
            producer.start(count=N, rate=1000)
            await tally.until(N // 5)
            backlog = producer.acked - len(tally.counts)
            await asyncio.to_thread(broker.restart)  # SIGTERM (Mosquitto saves), start again
            await asyncio.to_thread(producer.join)
            with contextlib.suppress(TimeoutError):
                await tally.until(N)
        finally:
            producer.close()
            await tally.close()
            await runtime.stop(drain_timeout=0.5)
    output = console.getvalue()
    assert set(tally.counts) == set(range(N)), (
        f"{tally.summary(N)}; runtime said:\n{output}\nbroker log:\n{broker.log()}"
    )
    assert backlog > 20, f"the restart should find messages held for the source ({backlog})"
    assert "retrying with backoff" in output, output
    print(f"broker restart with {backlog} held: {tally.summary(N)}")


class SlowReader:
    """A subscription read at about 500 a second: slower than the producer, so (with the
    bus's maxPending) the source stops acking and the broker holds a backlog."""

    def __init__(self, subscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> SlowReader:
        return self

    async def __anext__(self):
        await asyncio.sleep(0.002)
        return await anext(self._subscription)

    async def close(self) -> None:
        await self._subscription.close()


class Producer:
    """paho in its own thread, reconnecting by itself and sending again what a lost
    connection cut off; ``acked`` counts the messages the broker has PUBACKed."""

    def __init__(self, address: str, topic: str) -> None:
        host, _, port = address.rpartition(":")
        self.topic = topic
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"producer-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self.client.connect(host, int(port))
        self.client.loop_start()
        self._thread: threading.Thread | None = None
        self._mids: list[int] = []
        self._acked: set[int] = set()
        self._condition = threading.Condition()

    @property
    def acked(self) -> int:
        return len(self._acked)

    def _on_publish(self, _client, _userdata, mid, _reason, _properties) -> None:
        with self._condition:
            self._acked.add(mid)
            self._condition.notify_all()

    def start(self, count: int, rate: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(count, rate), daemon=True)
        self._thread.start()

    def _run(self, count: int, rate: float) -> None:
        start = time.monotonic()
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the producer, not synchronizing with it
            payload = orjson.dumps({"n": n, "vehicleId": f"v{n % 7}"})
            # while the broker is down paho keeps the message and sends it after reconnecting
            self._mids.append(self.client.publish(self.topic, payload, qos=1).mid)

    def join(self) -> None:
        """Until every message is published and the broker has acked each one."""
        assert self._thread is not None
        self._thread.join(DEADLINE)
        with self._condition:
            done = self._condition.wait_for(lambda: self._acked.issuperset(self._mids), DEADLINE)
        assert done, f"the broker acked {len(self._acked)} of {len(self._mids)} messages"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
