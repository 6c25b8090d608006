"""The MQTT source with producers we did not write: ``mosquitto_pub`` (MQTT 3.1.1 and 5).

Each test runs the source inside a Runtime (in-memory bus) against the session
Mosquitto and reads what it put on the bus. A retained *probe* message on a topic
the filter matches tells a test that the source's subscription is in place
(the broker hands retained messages to every new subscription), so nothing is
published before there is a session to queue it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.bindings.structured import from_json
from events.brokers.mqtt.acks import InOrderAcks
from events.cloudevent import CloudEvent
from events.errors import BusError, ManifestError
from events.manifests.openfunction import MQTTSpec
from events.observability.console import Console
from sources.contract import Outlet, SourceIdentity
from sources.mqtt import MqttSource, client_id
from sources.mqtt_decode import message_id
from tests.brokers import servers

pytestmark = [
    pytest.mark.mqtt,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto_pub"),
]

TIMEOUT = 5.0
PROBE = b"probe"


@pytest.fixture
def broker(mqtt_broker):
    if mqtt_broker.name == "amqtt":
        pytest.skip("needs Mosquitto: amqtt, the fallback broker, has no MQTT 5")
    return mqtt_broker


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def mosquitto_pub(
    broker, topic: str, payload: bytes | None, *options: str, version: str = "mqttv311"
) -> None:
    """Publish one message at QoS 1 with mosquitto_pub: ``-s`` takes the payload from stdin,
    ``-n`` (payload None) sends an empty one."""
    host, _, port = broker.address.rpartition(":")
    command = ["mosquitto_pub", "-h", host, "-p", port, "-V", version, "-q", "1", "-t", topic]
    command += [*options, "-n" if payload is None else "-s"]
    subprocess.run(command, input=payload, check=True, timeout=TIMEOUT)


def user_properties(**attributes: str) -> list[str]:
    return [
        arg
        for name, value in attributes.items()
        for arg in ("-D", "publish", "user-property", name, value)
    ]


def manifests(address: str, events: dict[str, dict[str, str]]) -> str:
    specs = "\n".join(f"    {name}: {orjson.dumps(spec).decode()}" for name, spec in events.items())
    return f"""
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {{name: default}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: cars}}
spec:
  eventBus: default
  mqtt:
{specs}
"""


class Feed:
    """A Runtime with the MQTT source events ``events`` (name -> settings); ``probes`` maps
    events to a topic their filter matches, for the retained probe (none for shared
    subscriptions: MQTT 5 does not send retained messages to those)."""

    def __init__(
        self, tmp_path: Path, broker, events: dict[str, dict[str, str]], probes: dict[str, str]
    ) -> None:
        self.broker, self.events, self.probes = broker, events, probes
        path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(manifests(broker.address, events))
        self.runtime = Runtime(load_catalog([str(path)], []), Console(stream=io.StringIO()))

    async def __aenter__(self) -> Feed:
        for topic in self.probes.values():
            await asyncio.to_thread(mosquitto_pub, self.broker, topic, PROBE, "-r")
        await self.runtime.start()
        bus = next(iter(self.runtime.buses.values()))
        self.subscriptions = {
            event: await bus.subscribe(f"default-cars-{event}", "test") for event in self.events
        }
        self.dead = await bus.subscribe("default-cars-deadletter", "test")
        for event in self.probes:  # each source's subscription is in place
            assert (await self._next(self.subscriptions[event])).data == "probe"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop(drain_timeout=0.5)
        for topic in self.probes.values():  # an empty retained message clears the probe
            await asyncio.to_thread(mosquitto_pub, self.broker, topic, None, "-r")

    async def next(self, event: str | None = None) -> CloudEvent:
        subscription = self.subscriptions[event or next(iter(self.subscriptions))]
        return await self._next(subscription)

    async def next_dead(self) -> CloudEvent:
        return await self._next(self.dead)

    async def _next(self, subscription) -> CloudEvent:
        message = await asyncio.wait_for(anext(subscription), TIMEOUT)
        await message.ack()
        return message.event

    def counter(self, name: str) -> float:
        value = self.runtime.metrics.registry.get_sample_value(
            name, {"source": f"default/cars/{next(iter(self.events))}"}
        )
        return value or 0.0


def one_event(prefix: str, protocol: str = "5", **extra: str) -> tuple[dict, dict]:
    topic = f"{prefix}/+/telemetry"
    spec = {"url": "tcp://ADDRESS", "topic": topic, "protocolVersion": protocol}
    spec |= {"consumerID": f"c{prefix}", **extra}  # sessions of this test's own
    return {"telemetry": spec}, {"telemetry": f"{prefix}/probe/telemetry"}


def feed(tmp_path: Path, broker, prefix: str, protocol: str = "5", **extra: str) -> Feed:
    events, probes = one_event(prefix, protocol, **extra)
    for spec in events.values():
        spec["url"] = f"tcp://{broker.address}"
    return Feed(tmp_path, broker, events, probes)


# -- wrapping -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_plain_json_is_wrapped_with_an_id_that_stays_the_same(
    tmp_path, broker, prefix, protocol
) -> None:
    topic = f"{prefix}/v7/telemetry"
    body = b'{"vehicleId": "v7", "speed": 91.5}'
    async with feed(tmp_path, broker, prefix, protocol) as cars:
        await asyncio.to_thread(mosquitto_pub, broker, topic, body)
        first = await cars.next()
        await asyncio.to_thread(mosquitto_pub, broker, topic, body)
        again = await cars.next()
    assert first.type == "dev.fnevents.mqtt.message"
    assert first.source == f"mqtt://{broker.address}/{topic}"
    assert first.subject == topic
    assert (first.datacontenttype, first.data) == (
        "application/json",
        {"vehicleId": "v7", "speed": 91.5},
    )
    assert first.time is not None
    assert first.id == again.id == message_id(topic, body), "the same message keeps its id"


async def test_binary_and_text_payloads_are_wrapped_with_their_content_type(
    tmp_path, broker, prefix
) -> None:
    binary = bytes(range(256))
    async with feed(tmp_path, broker, prefix) as cars:
        await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v1/telemetry", binary)
        await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v1/telemetry", b"speed=80")
        raw, text = await cars.next(), await cars.next()
    assert (raw.datacontenttype, raw.data) == ("application/octet-stream", binary)
    assert (text.datacontenttype, text.data) == ("text/plain", "speed=80")
    assert raw.id != text.id


async def test_an_mqtt5_content_type_is_honoured(tmp_path, broker, prefix) -> None:
    async with feed(tmp_path, broker, prefix) as cars:
        await asyncio.to_thread(
            mosquitto_pub,
            broker,
            f"{prefix}/v1/telemetry",
            b"v1,80,55",
            "-D",
            "publish",
            "content-type",
            "text/csv",
            version="mqttv5",
        )
        event = await cars.next()
    assert (event.type, event.datacontenttype, event.data) == (
        "dev.fnevents.mqtt.message",
        "text/csv",
        "v1,80,55",
    )


# -- CloudEvents pass through ---------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_structured_cloudevent_passes_through_unchanged(
    tmp_path, broker, prefix, protocol
) -> None:
    payload = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "reading-1",
            "source": "/vehicles/v7",
            "type": "vehicle.telemetry",
            "subject": "v7",
            "time": "2024-05-01T12:00:00Z",
            "datacontenttype": "application/json",
            "fleet": "north",
            "data": {"speed": 130},
        }
    )
    async with feed(tmp_path, broker, prefix, protocol) as cars:
        await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v7/telemetry", payload)
        event = await cars.next()
    assert event == from_json(payload)
    assert event.extensions == {"fleet": "north"}


async def test_an_mqtt5_binary_cloudevent_passes_through_with_its_extensions(
    tmp_path, broker, prefix
) -> None:
    attributes = user_properties(
        specversion="1.0",
        id="reading-2",
        source="/vehicles/v8",
        type="vehicle.telemetry",
        subject="v8",
        time="2024-05-01T12:00:01Z",
        fleet="south",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    options = [*attributes, "-D", "publish", "user-property", "App-Header", "ignored"]
    options += ["-D", "publish", "content-type", "application/json"]
    async with feed(tmp_path, broker, prefix) as cars:
        await asyncio.to_thread(
            mosquitto_pub,
            broker,
            f"{prefix}/v8/telemetry",
            b'{"speed": 64, "battery": 12}',
            *options,
            version="mqttv5",
        )
        event = await cars.next()
    assert (event.id, event.source, event.type, event.subject, event.time) == (
        "reading-2",
        "/vehicles/v8",
        "vehicle.telemetry",
        "v8",
        "2024-05-01T12:00:01Z",
    )
    assert (event.datacontenttype, event.data) == ("application/json", {"speed": 64, "battery": 12})
    assert event.extensions == {
        "fleet": "south",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }


# -- topics -----------------------------------------------------------------------------


async def test_plus_and_hash_wildcards_select_their_topics(tmp_path, broker, prefix) -> None:
    url = f"tcp://{broker.address}"
    events = {
        "plus": {"url": url, "topic": f"{prefix}/+/telemetry", "consumerID": f"p{prefix}"},
        "hash": {"url": url, "topic": f"{prefix}/fleet/#", "consumerID": f"h{prefix}"},
    }
    probes = {"plus": f"{prefix}/probe/telemetry", "hash": f"{prefix}/fleet/probe"}
    sent = [
        f"{prefix}/v1/telemetry",  # plus
        f"{prefix}/v1/status",  # neither
        f"{prefix}/v1/deep/telemetry",  # neither: + is one level
        f"{prefix}/fleet/north/v2/telemetry",  # hash
        f"{prefix}/fleet",  # hash: # also matches the parent level
    ]
    async with Feed(tmp_path, broker, events, probes) as cars:
        for topic in sent:
            await asyncio.to_thread(mosquitto_pub, broker, topic, topic.encode())
        plus = await cars.next("plus")
        hashed = {(await cars.next("hash")).subject for _ in range(2)}
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(cars.subscriptions["plus"]), 0.3)
    assert plus.subject == f"{prefix}/v1/telemetry"
    assert hashed == {f"{prefix}/fleet/north/v2/telemetry", f"{prefix}/fleet"}


async def test_shared_subscription_replicas_split_the_messages(
    tmp_path, broker, prefix, monkeypatch
) -> None:
    events, _ = one_event(prefix)
    events["telemetry"].update(url=f"tcp://{broker.address}", topic=f"$share/g/{prefix}/+/x")
    sent = {f"m{n}" for n in range(20)}
    got: list[list[str]] = [[], []]
    arrived: asyncio.Queue[None] = asyncio.Queue()

    async def drain(feed: Feed, into: list[str]) -> None:
        async for message in feed.subscriptions["telemetry"]:
            await message.ack()
            into.append(message.event.data)
            arrived.put_nowait(None)

    async with contextlib.AsyncExitStack() as stack:
        replicas = []
        for name in ("replica-a", "replica-b"):
            monkeypatch.setenv("POD_NAME", name)  # read when the source is built, at start
            replicas.append(await stack.enter_async_context(Feed(tmp_path, broker, events, {})))
        tasks = [asyncio.create_task(drain(f, into)) for f, into in zip(replicas, got, strict=True)]
        try:
            async with asyncio.timeout(TIMEOUT):  # until both replicas have subscribed
                while not all("probe" in into for into in got):
                    await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v/x", PROBE)
                    await asyncio.sleep(0.05)
            for into in got:  # late probes may still come: they are left out below
                into.clear()
            for body in sorted(sent):
                await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v/x", body.encode())
            async with asyncio.timeout(TIMEOUT):
                while len([d for into in got for d in into if d != "probe"]) < len(sent):
                    await arrived.get()
        finally:
            for task in tasks:
                task.cancel()
    messages = [[d for d in into if d != "probe"] for into in got]
    assert sorted(messages[0] + messages[1]) == sorted(sent), "every message once"
    assert messages[0] and messages[1], f"both took a share: {messages}"


def test_client_ids_follow_openfunction_and_differ_per_replica_when_shared(monkeypatch) -> None:
    identity = SourceIdentity("default", "cars", "telemetry")
    monkeypatch.setenv("POD_NAME", "pod-1")
    assert client_id(identity, None, "vehicles/+/telemetry") == "default-esc-mqtt-telemetry"
    assert client_id(identity, "mine", "vehicles/#") == "mine"
    assert client_id(identity, None, "$share/g/vehicles/#") == "default-esc-mqtt-telemetry-pod-1"
    monkeypatch.delenv("POD_NAME")
    monkeypatch.setenv("HOSTNAME", "host-2")
    assert client_id(identity, "mine", "$share/g/vehicles/#") == "mine-host-2"


# -- bad input ------------------------------------------------------------------------


async def test_bad_payloads_go_to_the_dead_letter_and_the_source_keeps_going(
    tmp_path, broker, prefix
) -> None:
    topic = f"{prefix}/v9/telemetry"
    invalid_cloudevent = b'{"specversion": "1.0", "id": "x", "type": "t"}'  # no source
    truncated_cloudevent = b'{"specversion": "1.0", "id": "y", "source": "/s", "typ'
    async with feed(tmp_path, broker, prefix) as cars:
        await asyncio.to_thread(mosquitto_pub, broker, topic, invalid_cloudevent)
        await asyncio.to_thread(mosquitto_pub, broker, topic, truncated_cloudevent)
        declared_json = ("-D", "publish", "content-type", "application/json")
        await asyncio.to_thread(
            mosquitto_pub, broker, topic, b"{not json", *declared_json, version="mqttv5"
        )
        await asyncio.to_thread(mosquitto_pub, broker, topic, b'{"speed": 1}')
        good = await cars.next()
        dead = [await cars.next_dead() for _ in range(3)]
        rejected = cars.counter("fnevents_source_rejected_total")
    assert good.data == {"speed": 1}
    assert [d.data for d in dead] == [invalid_cloudevent, truncated_cloudevent, b"{not json"]
    assert {d.type for d in dead} == {"dev.fnevents.source.rejected"}
    reasons = [d.extensions["fnerrorreason"] for d in dead]
    assert "invalid CloudEvent attribute 'source'" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert "declared application/json but is not valid JSON" in reasons[2]
    assert dead[0].id == f"rejected:{message_id(topic, invalid_cloudevent)}"
    assert rejected == 3


def test_bad_settings_are_reported_with_the_field() -> None:
    identity = SourceIdentity("default", "cars", "telemetry")

    def build(**fields: str) -> MqttSource:
        return MqttSource(
            identity, MQTTSpec(**{"url": "tcp://localhost", "topic": "a/b", **fields})
        )

    with pytest.raises(
        ManifestError, match=r"^topic: '#' must be a whole level, and the last one: 'a/#/b'$"
    ):
        build(topic="a/#/b")
    with pytest.raises(ManifestError, match=r"'\+' must be a whole level"):
        build(topic="a/b+")
    with pytest.raises(ManifestError, match=r"\$share/<group>/<filter>"):
        build(topic="$share//a")
    with pytest.raises(ManifestError, match=r"^caCert needs a TLS url"):
        build(caCert="-----BEGIN CERTIFICATE-----")
    with pytest.raises(ManifestError, match=r"^url: expected tcp://"):
        build(url="http://localhost")
    with pytest.raises(ManifestError, match=r"^password: a password needs a username"):
        build(password="secret")
    source = build(url="tcp://user:secret@broker:1884", topic="v/+/t")
    assert source.describe() == (
        "mqtt default/cars/telemetry from tcp://user:***@broker:1884 topic v/+/t"
    )
    assert source.notices() == []


def test_weaker_guarantees_are_said_at_startup() -> None:
    identity = SourceIdentity("default", "cars", "telemetry")
    spec = MQTTSpec(url="tcp://broker", topic="v/#", qos=0, cleanSession=True, retain=True)
    notices = MqttSource(identity, spec).notices()
    assert [n.split(" ", 2)[:2] for n in notices] == [
        ["qos", "0"],
        ["cleanSession", "true:"],
        ["'retain'", "is"],
    ]
    assert "at most once" in notices[0]
    qos2 = MqttSource(identity, MQTTSpec(url="tcp://broker", topic="v/#", qos=2)).notices()
    assert qos2 and "received as qos 1" in qos2[0]


# -- at least once ----------------------------------------------------------------------


class Recorder:
    """An outlet that records events and, from the event whose data is ``stall``, waits
    forever (emit never returns) -- as a bus that stopped accepting would. The probe
    (and the empty message that clears it) only set ``probed``."""

    def __init__(self, stall: object = None) -> None:
        self.events: list[CloudEvent] = []
        self.stall = stall
        self.stalled = asyncio.Event()
        self.probed = asyncio.Event()

    async def emit(self, event: CloudEvent) -> None:
        if event.data in ("probe", ""):
            self.probed.set()
            return
        if event.data == self.stall:
            self.stalled.set()
            await asyncio.Event().wait()
        self.events.append(event)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.events) < count:
                await asyncio.sleep(0.01)


def direct_source(broker, prefix: str, consumer: str, protocol: str) -> MqttSource:
    spec = MQTTSpec(
        url=f"tcp://{broker.address}",
        topic=f"{prefix}/+/t",
        consumerID=consumer,
        protocolVersion=protocol,
    )
    return MqttSource(SourceIdentity("default", "cars", "t"), spec)


async def start(source: MqttSource, outlet: Recorder, broker, prefix: str) -> asyncio.Task:
    """Run the source until its probe arrives; then its session and subscription exist."""
    await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/probe/t", PROBE, "-r")
    task = asyncio.create_task(source.run(Outlet(outlet.emit)))
    await asyncio.wait_for(outlet.probed.wait(), TIMEOUT)
    await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/probe/t", None, "-r")
    return task


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_only_messages_whose_emit_returned_are_acked(broker, prefix, protocol) -> None:
    """Messages 0-2 are emitted; emit of 3 never returns (4-7 may be emitted meanwhile,
    but cannot be acked before 3); the source is stopped. A new run with the same
    session gets 3-7 again, and none of 0-2."""
    consumer = f"c{uuid.uuid4().hex[:8]}"
    first = Recorder(stall=3)
    task = await start(direct_source(broker, prefix, consumer, protocol), first, broker, prefix)
    for n in range(8):
        await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v/t", str(n).encode())
    await asyncio.wait_for(first.stalled.wait(), TIMEOUT)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    emitted = [e.data for e in first.events]
    assert emitted[:3] == [0, 1, 2] and 3 not in emitted

    second = Recorder()
    task = asyncio.create_task(
        direct_source(broker, prefix, consumer, protocol).run(Outlet(second.emit))
    )
    try:
        await second.wait_for(5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    data = [e.data for e in second.events]
    assert sorted(data[:5]) == [3, 4, 5, 6, 7], f"redelivered: {data}"


async def test_a_failing_emit_ends_the_run_and_the_message_comes_back(broker, prefix) -> None:
    consumer = f"c{uuid.uuid4().hex[:8]}"
    failures = []

    class Failing(Recorder):
        async def emit(self, event: CloudEvent) -> None:
            if event.data == 1 and not failures:
                failures.append(event.id)
                raise BusError("the bus is down", retriable=True)
            await super().emit(event)

    outlet = Failing()
    task = await start(direct_source(broker, prefix, consumer, "5"), outlet, broker, prefix)
    await asyncio.to_thread(mosquitto_pub, broker, f"{prefix}/v/t", b"1")
    with pytest.raises(BusError, match="the bus is down"):
        await asyncio.wait_for(task, TIMEOUT)
    task = asyncio.create_task(
        direct_source(broker, prefix, consumer, "5").run(Outlet(outlet.emit))
    )
    try:
        await outlet.wait_for(1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert outlet.events[0].data == 1 and outlet.events[0].id == failures[0]


async def test_an_unreachable_broker_is_a_retriable_error_naming_it() -> None:
    address = f"127.0.0.1:{servers.free_port()}"
    spec = MQTTSpec(url=f"tcp://{address}", topic="a/#")
    source = MqttSource(SourceIdentity("default", "cars", "t"), spec)
    with pytest.raises(BusError, match=f"cannot reach MQTT broker at {address}") as caught:
        await source.run(Outlet(Recorder().emit))
    assert caught.value.retriable


# -- TLS ---------------------------------------------------------------------------------


async def test_tls_with_a_client_certificate(tmp_path, prefix) -> None:
    from tests.bus.test_mqtt import tls_mosquitto

    with servers.running(tls_mosquitto(tmp_path)) as broker:
        pem = {n: (tmp_path / n).read_text() for n in ("ca.pem", "client.pem", "client.key")}
        spec = MQTTSpec(
            url=f"ssl://{broker.address}",
            topic=f"{prefix}/+/t",
            caCert=pem["ca.pem"],
            clientCert=pem["client.pem"],
            clientKey=pem["client.key"],
        )
        outlet = Recorder()
        source = MqttSource(SourceIdentity("default", "cars", "t"), spec)
        task = asyncio.create_task(source.run(Outlet(outlet.emit)))
        try:
            tls = ["--cafile", str(tmp_path / "ca.pem"), "--cert", str(tmp_path / "client.pem")]
            tls += ["--key", str(tmp_path / "client.key")]
            await publish_until_received(broker, f"{prefix}/v/t", tls, outlet)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert outlet.events[0].source == f"mqtt://{broker.address}/{prefix}/v/t"


async def publish_until_received(
    broker, topic: str, options: Sequence[str], outlet: Recorder
) -> None:
    """QoS 1 with a clean session: publish again until the source (just started) has one."""
    async with asyncio.timeout(TIMEOUT):
        while not outlet.events:
            await asyncio.to_thread(mosquitto_pub, broker, topic, b'{"n": 1}', *options)
            await asyncio.sleep(0.1)


# -- acks in arrival order ------------------------------------------------------------------


async def until(condition, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


async def test_acks_go_out_in_arrival_order_whatever_order_handles_finish() -> None:
    gates = {n: asyncio.Event() for n in range(8)}
    finished: list[int] = []
    acked: list[int] = []

    async def handle(n: int) -> None:
        await gates[n].wait()
        if n == 6:
            raise BusError("the bus refused 6", retriable=True)
        finished.append(n)

    window = InOrderAcks(handle, acked.append, workers=4)
    running = asyncio.create_task(window.run())
    for n in range(6):
        window.put(n)
    for n in (2, 1, 3):
        gates[n].set()
    await until(lambda: sorted(finished) == [1, 2, 3])
    assert acked == [], "nothing is acked while the first message is still being handled"
    gates[0].set()
    await until(lambda: acked == [0, 1, 2, 3])
    gates[5].set()
    await until(lambda: 5 in finished)  # 4 and 5 started once workers were free
    assert acked == [0, 1, 2, 3]
    gates[4].set()
    await until(lambda: acked == [0, 1, 2, 3, 4, 5])
    window.put(6)
    window.put(7)
    gates[7].set()
    await until(lambda: 7 in finished)
    gates[6].set()
    with pytest.raises(BusError, match="refused 6"):
        await asyncio.wait_for(running, TIMEOUT)
    assert acked == [0, 1, 2, 3, 4, 5], "after a failure nothing more is acked, not even 7"
    assert window.unacked == 2
