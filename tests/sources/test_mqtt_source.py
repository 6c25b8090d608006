"""The MQTT source with producers we did not write: ``mosquitto_pub`` (MQTT 3.1.1 and 5).

Each test runs the source inside a Runtime (in-memory bus) against the session
Mosquitto and reads what it put on the bus, or runs the source alone with a test outlet.
A retained *probe* message on a topic the filter matches tells a test that the source's
subscription is in place (the broker hands retained messages to every new
subscription), so nothing is published before there is a session to queue it.

The source joins the conformance suite (``tests/sources/suite.py``) once per protocol
version; what only MQTT has (ids that are hashes, user properties, wildcards, client
ids, QoS and session settings, TLS, acks in arrival order) is tested here.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from events.brokers.mqtt.acks import InOrderAcks
from events.errors import BusError, ManifestError
from events.manifests.openfunction import MQTTSpec
from sources.contract import SourceIdentity
from sources.mqtt import MqttSource, client_id
from sources.mqtt_decode import message_id
from tests.brokers import servers
from tests.helpers import received, until
from tests.manifests import documents
from tests.sources import config
from tests.sources.config import Binding, Sent, SourceConfig, Upstream
from tests.sources.harness import PROBE, Recorder, Running, run, stop
from tests.sources.suite import SourceConformance

pytestmark = [
    pytest.mark.mqtt,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto_pub"),
]

TIMEOUT = 5.0
EVENT = "telemetry"


@pytest.fixture
def broker(mqtt_broker):
    if mqtt_broker.name == "amqtt":
        pytest.skip("needs Mosquitto: amqtt, the fallback broker, has no MQTT 5")
    return mqtt_broker


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def mosquitto_pub(
    address: str, topic: str, payload: bytes | None, *options: str, version: str = "mqttv311"
) -> None:
    """Publish one message at QoS 1 with mosquitto_pub: ``-s`` takes the payload from stdin,
    ``-n`` (payload None or empty) sends an empty one."""
    host, _, port = address.rpartition(":")
    command = ["mosquitto_pub", "-h", host, "-p", port, "-V", version, "-q", "1", "-t", topic]
    command += [*options, "-s" if payload else "-n"]
    subprocess.run(command, input=payload, check=True, timeout=TIMEOUT)


async def publish(
    address: str, topic: str, payload: bytes | None, *options: str, version: str = "mqttv311"
) -> None:
    await asyncio.to_thread(mosquitto_pub, address, topic, payload, *options, version=version)


def user_properties(attributes: Sequence[tuple[str, str]]) -> list[str]:
    return [
        arg for name, value in attributes for arg in ("-D", "publish", "user-property", name, value)
    ]


def declared(content_type: str | None) -> list[str]:
    """The MQTT 5 Content Type property, if any."""
    return [] if content_type is None else ["-D", "publish", "content-type", content_type]


def manifests(events: dict[str, dict[str, object]]) -> str:
    return documents.EMBEDDED_BUS + documents.eventsource("cars", "mqtt", events)


class Feed(Running):
    """A Runtime with the MQTT source events ``events`` (name -> settings), entered once
    each source's subscription is in place: ``probes`` maps events to a topic their
    filter matches, for the retained probe (cleared on exit)."""

    def __init__(
        self, tmp_path: Path, address: str, events: dict[str, dict], probes: dict[str, str]
    ) -> None:
        super().__init__(tmp_path, manifests(events), "cars", list(events), TIMEOUT)
        self.address, self.probes = address, probes

    async def __aenter__(self) -> Feed:
        for topic in self.probes.values():
            await publish(self.address, topic, PROBE, "-r")
        await super().__aenter__()
        for event in self.probes:  # each source's subscription is in place
            assert (await self.next(self.subscriptions[event])).data == PROBE.decode()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        for topic in self.probes.values():  # an empty retained message clears the probe
            await publish(self.address, topic, None, "-r")


class MqttSourceConfig(SourceConfig):
    """The event ``telemetry`` reading ``<prefix>/+/telemetry`` in a session of its own;
    messages go to ``<prefix>/v7/telemetry``."""

    kind = "mqtt"
    eventsource = "cars"
    wrapped_type = "dev.fnevents.mqtt.message"
    protocol: ClassVar[str]
    receive_timeout = TIMEOUT
    restart_timeout = TIMEOUT
    split_timeout = TIMEOUT
    replica_messages = 20

    @pytest.fixture
    def upstream(self, broker, prefix) -> Upstream:
        return Upstream(broker.address, EVENT, prefix)

    @staticmethod
    def topic(upstream: Upstream) -> str:
        return f"{upstream.name}/v7/telemetry"

    def settings(self, upstream: Upstream) -> dict[str, object]:
        return {
            "url": f"tcp://{upstream.address}",
            "topic": f"{upstream.name}/+/telemetry",
            "protocolVersion": self.protocol,
            "consumerID": f"c{upstream.name}",  # a session of this test's own
        }

    def unreachable(self, upstream: Upstream, address: str) -> dict[str, object]:
        return {**self.settings(upstream), "url": f"tcp://{address}"}

    def describes(self, upstream: Upstream, address: str) -> str:
        return f"mqtt default/cars/{EVENT} from tcp://{address} topic {upstream.name}/+/telemetry"

    def cannot_reach(self, upstream: Upstream, address: str) -> str:
        return f"cannot reach MQTT broker at {address}"

    def sent(self, upstream: Upstream, payload: bytes) -> Sent:
        topic = self.topic(upstream)
        return Sent(
            id=message_id(topic, payload),  # no position: a hash of topic and payload
            raw=payload,
            source=f"mqtt://{upstream.address}/{topic}",
            subject=topic,
        )

    async def produce(
        self, upstream: Upstream, payload: bytes, content_type: str | None = None
    ) -> Sent:
        version = "mqttv311" if content_type is None else "mqttv5"  # 3.1.1 has no properties
        options = declared(content_type)
        await publish(upstream.address, self.topic(upstream), payload, *options, version=version)
        return self.sent(upstream, payload)

    def running(self, tmp_path: Path, upstream: Upstream, **settings: object) -> Running:
        events = {upstream.event: {**self.settings(upstream), **settings}}
        probes = {upstream.event: f"{upstream.name}/probe/telemetry"}
        return Feed(tmp_path, upstream.address, events, probes)

    async def start(self, source, outlet: Recorder, upstream: Upstream) -> asyncio.Task:
        """Run the source until its probe arrives; then its session and subscription exist."""
        probe = f"{upstream.name}/probe/telemetry"
        await publish(upstream.address, probe, PROBE, "-r")
        task = run(source, outlet)
        await asyncio.wait_for(outlet.probed.wait(), TIMEOUT)
        await publish(upstream.address, probe, None, "-r")
        return task

    @contextlib.asynccontextmanager
    async def replicas(self, tmp_path, upstream: Upstream, monkeypatch) -> AsyncIterator[list]:
        """Two replicas of a shared subscription, each a client id of its own, once both
        have subscribed (MQTT 5 sends no retained message to a shared subscription, so
        probes are published until each replica got one; later ones are left out)."""
        shared = {**self.settings(upstream), "topic": f"$share/g/{upstream.name}/+/telemetry"}
        text = manifests({upstream.event: shared})
        async with contextlib.AsyncExitStack() as stack:
            replicas = []
            for name in ("replica-a", "replica-b"):
                monkeypatch.setenv("POD_NAME", name)  # read when the source is built, at start
                replica = Running(tmp_path, text, "cars", [upstream.event], TIMEOUT)
                replicas.append(await stack.enter_async_context(replica))
            probed = [asyncio.create_task(received(r.events, TIMEOUT)) for r in replicas]
            try:
                async with asyncio.timeout(TIMEOUT):  # until both replicas have subscribed
                    while not all(task.done() for task in probed):
                        await publish(upstream.address, self.topic(upstream), PROBE)
                        await asyncio.sleep(0.05)
            finally:
                for task in probed:
                    task.cancel()
            assert {(await task).data for task in probed} == {PROBE.decode()}
            yield replicas


class Mqtt5SourceConfig(MqttSourceConfig):
    protocol = "5"

    async def produce_binding(self, upstream: Upstream, binding: Binding) -> Sent:
        """Binary mode: the attributes as User Properties, the Content Type property."""
        options = user_properties(binding.attributes) + declared(binding.content_type)
        payload = binding.data or b""
        await publish(upstream.address, self.topic(upstream), payload, *options, version="mqttv5")
        return self.sent(upstream, payload)


class Mqtt311SourceConfig(MqttSourceConfig):
    protocol = "3.1.1"
    limits: ClassVar[dict[str, str]] = {
        config.CONTENT_TYPE: "an MQTT 3.1.1 message has no properties, so no content type",
    }

    async def produce_binding(self, upstream: Upstream, binding: Binding) -> Sent:
        """The one binding MQTT 3.1.1 has: the JSON event format as the payload."""
        document: dict[str, object] = dict(binding.attributes)
        content_type, data = binding.content_type, binding.data
        if content_type is not None:
            document["datacontenttype"] = content_type
        if data is not None:
            json = content_type is None or "json" in content_type
            document["data"] = orjson.loads(data) if json else data.decode()
        return await self.produce(upstream, orjson.dumps(document))


class TestMqtt5Source(Mqtt5SourceConfig, SourceConformance):
    pass


class TestMqtt311Source(Mqtt311SourceConfig, SourceConformance):
    pass


CONFIGS = {"3.1.1": Mqtt311SourceConfig(), "5": Mqtt5SourceConfig()}


def feed(tmp_path: Path, broker, prefix: str, protocol: str = "5") -> Running:
    return CONFIGS[protocol].running(tmp_path, Upstream(broker.address, EVENT, prefix))


# -- what messages become ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_repeated_payload_keeps_its_id(tmp_path, broker, prefix, protocol) -> None:
    topic = f"{prefix}/v7/telemetry"
    body = b'{"vehicleId": "v7", "speed": 91.5}'
    async with feed(tmp_path, broker, prefix, protocol) as cars:
        await publish(broker.address, topic, body)
        first = await cars.next()
        await publish(broker.address, topic, body)
        again = await cars.next()
    assert first.id == again.id == message_id(topic, body), "the same message keeps its id"


async def test_an_mqtt5_binary_cloudevent_passes_through_with_its_extensions(
    tmp_path, broker, prefix
) -> None:
    attributes = [
        ("specversion", "1.0"),
        ("id", "reading-2"),
        ("source", "/vehicles/v8"),
        ("type", "vehicle.telemetry"),
        ("subject", "v8"),
        ("time", "2024-05-01T12:00:01Z"),
        ("fleet", "south"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]
    options = user_properties([*attributes, ("App-Header", "ignored")])
    options += declared("application/json")
    async with feed(tmp_path, broker, prefix) as cars:
        await publish(
            broker.address,
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
    async with Feed(tmp_path, broker.address, events, probes) as cars:
        for topic in sent:
            await publish(broker.address, topic, topic.encode())
        plus = await cars.next(cars.subscriptions["plus"])
        hashed = {(await cars.next(cars.subscriptions["hash"])).subject for _ in range(2)}
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(cars.subscriptions["plus"]), 0.3)
    assert plus.subject == f"{prefix}/v1/telemetry"
    assert hashed == {f"{prefix}/fleet/north/v2/telemetry", f"{prefix}/fleet"}


def test_client_ids_follow_openfunction_and_differ_per_replica_when_shared(monkeypatch) -> None:
    identity = SourceIdentity("default", "cars", "telemetry")
    monkeypatch.setenv("POD_NAME", "pod-1")
    assert client_id(identity, None, "vehicles/+/telemetry") == "default-esc-mqtt-telemetry"
    assert client_id(identity, "mine", "vehicles/#") == "mine"
    assert client_id(identity, None, "$share/g/vehicles/#") == "default-esc-mqtt-telemetry-pod-1"
    monkeypatch.delenv("POD_NAME")
    monkeypatch.setenv("HOSTNAME", "host-2")
    assert client_id(identity, "mine", "$share/g/vehicles/#") == "mine-host-2"


# -- settings ---------------------------------------------------------------------------


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
        task = run(source, outlet)
        try:
            tls = ["--cafile", str(tmp_path / "ca.pem"), "--cert", str(tmp_path / "client.pem")]
            tls += ["--key", str(tmp_path / "client.key")]
            await publish_until_received(broker.address, f"{prefix}/v/t", tls, outlet)
        finally:
            await stop(task)
    assert outlet.events[0].source == f"mqtt://{broker.address}/{prefix}/v/t"


async def publish_until_received(
    address: str, topic: str, options: Sequence[str], outlet: Recorder
) -> None:
    """QoS 1 with a clean session: publish again until the source (just started) has one."""
    async with asyncio.timeout(TIMEOUT):
        while not outlet.events:
            await publish(address, topic, b'{"n": 1}', *options)
            await asyncio.sleep(0.1)


# -- acks in arrival order ------------------------------------------------------------------


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
    await until(lambda: sorted(finished) == [1, 2, 3], "handles 1-3 finished", TIMEOUT)
    assert acked == [], "nothing is acked while the first message is still being handled"
    gates[0].set()
    await until(lambda: acked == [0, 1, 2, 3], "0-3 are acked", TIMEOUT)
    gates[5].set()
    await until(
        lambda: 5 in finished, "5 finished (4 and 5 started once workers were free)", TIMEOUT
    )
    assert acked == [0, 1, 2, 3]
    gates[4].set()
    await until(lambda: acked == [0, 1, 2, 3, 4, 5], "0-5 are acked", TIMEOUT)
    window.put(6)
    window.put(7)
    gates[7].set()
    await until(lambda: 7 in finished, "7 finished", TIMEOUT)
    gates[6].set()
    with pytest.raises(BusError, match="refused 6"):
        await asyncio.wait_for(running, TIMEOUT)
    assert acked == [0, 1, 2, 3, 4, 5], "after a failure nothing more is acked, not even 7"
    assert window.unacked == 2
