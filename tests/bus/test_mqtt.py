"""What the MQTT backend adds to the conformance suite: Dapr's wire format both ways,
foreign and broken payloads, settings, member sessions, outages and broker restarts."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from events.app.plans import BusPlan
from events.brokers.mqtt.bus import MAX_CLIENT_ID, MqttBus, MqttSettings, member_client_id
from events.brokers.registry import bus_settings
from events.bus.envelope import RAW_TYPE, UNDECODABLE_TYPE
from events.bus.resilient import ResilientSubscription, publish_until_accepted
from events.cloudevent import CloudEvent
from events.errors import BusError, ManifestError
from tests.brokers import servers
from tests.bus.capabilities import require_broker
from tests.helpers import RECEIVE_TIMEOUT, receive

pytestmark = pytest.mark.mqtt

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def broker(mqtt_broker):
    require_broker("mqtt", mqtt_broker)
    return mqtt_broker


@pytest.fixture
def topic() -> str:
    return f"mqtt-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def consumer() -> str:
    """A consumerID of this test's own, so no other test's sessions are resumed."""
    return f"t{uuid.uuid4().hex[:8]}"


def settings(address: str, **metadata: str) -> MqttSettings:
    return MqttSettings.model_validate({"url": f"tcp://{address}", **metadata})


@pytest.fixture
async def bus(broker, consumer: str) -> AsyncIterator[MqttBus]:
    bus = MqttBus(settings(broker.address, consumerID=consumer), pubsub_name="orderpubsub")
    async with bus as started:
        yield started


class RawClient:
    """A plain paho client in its own thread: what any other MQTT producer would use."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.received: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex}")
        self.client.on_message = lambda _c, _u, message: self.received.put(message)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(RECEIVE_TIMEOUT)

    def subscribe(self, topic: str) -> None:
        subscribed = queue.Queue()
        self.client.on_subscribe = lambda *args: subscribed.put(args)
        self.client.subscribe(topic, qos=1)
        subscribed.get(timeout=RECEIVE_TIMEOUT)

    async def next(self) -> paho.MQTTMessage:
        return await asyncio.to_thread(self.received.get, timeout=RECEIVE_TIMEOUT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def raw(broker) -> Iterator[RawClient]:
    client = RawClient(broker.address)
    yield client
    client.close()


# -- Dapr interop ----------------------------------------------------------------------


async def test_a_dapr_envelope_published_raw_is_delivered_as_its_event(
    bus: MqttBus, raw: RawClient, topic: str
) -> None:
    sub = await bus.subscribe(topic, "g")
    dapr_wrote = {  # what daprd's pubsub.mqtt3 publishes for `dapr publish --data '{...}'`
        "id": "5a8b6c34-a0b5-4a43-9a5c-1f6e1d2b1e11",
        "source": "checkout",
        "type": "com.dapr.event.sent",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": {"orderId": 100},
        "topic": topic,
        "pubsubname": "orderpubsub",
        "traceid": TRACEPARENT,
        "traceparent": TRACEPARENT,
        "tracestate": "",
        "time": "2024-05-01T12:30:45Z",
    }
    await asyncio.to_thread(raw.publish, topic, orjson.dumps(dapr_wrote))
    message = await receive(sub)
    event = message.event
    assert (event.id, event.source, event.type) == (
        dapr_wrote["id"],
        "checkout",
        "com.dapr.event.sent",
    )
    assert event.data == {"orderId": 100}
    assert event.extensions == {"traceparent": TRACEPARENT, "tracestate": ""}
    assert (message.topic, message.attempt) == (topic, 1)
    await message.ack()
    await sub.close()


async def test_what_we_publish_is_a_dapr_envelope(bus: MqttBus, raw: RawClient, topic: str) -> None:
    await asyncio.to_thread(raw.subscribe, topic)
    event = CloudEvent.create("com.example.order", "/shop", {"orderId": 7}, traceparent=TRACEPARENT)
    await bus.publish(topic, event)
    message = await raw.next()
    assert message.qos == 1 and not message.retain
    envelope = orjson.loads(message.payload)
    assert envelope["topic"] == topic and envelope["pubsubname"] == "orderpubsub"
    assert envelope["traceid"] == envelope["traceparent"] == TRACEPARENT
    assert envelope["data"] == {"orderId": 7}
    assert envelope["datacontenttype"] == "application/json"
    assert {k: envelope[k] for k in ("id", "source", "type", "specversion")} == {
        "id": event.id,
        "source": "/shop",
        "type": "com.example.order",
        "specversion": "1.0",
    }


async def test_qos_2_publishes_wait_for_the_whole_handshake(
    broker, consumer: str, raw: RawClient, topic: str
) -> None:
    await asyncio.to_thread(raw.subscribe, topic)
    async with MqttBus(settings(broker.address, consumerID=consumer, qos="2")) as bus:
        await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}))
    message = await raw.next()
    assert message.qos == 1  # the raw subscriber asked for 1


# -- foreign and broken payloads -------------------------------------------------------


async def test_a_foreign_payload_is_wrapped_with_an_id_that_survives_redelivery(
    bus: MqttBus, raw: RawClient, topic: str
) -> None:
    leaver = await bus.subscribe(topic, "g")
    await asyncio.to_thread(raw.publish, topic, b'{"temperature": 21.5}')
    await asyncio.to_thread(raw.publish, topic, b"\x00\x01 not json")
    first, second = await receive(leaver), await receive(leaver)
    assert (first.event.type, first.event.datacontenttype) == (RAW_TYPE, "application/json")
    assert first.event.data == {"temperature": 21.5}
    assert first.event.source == f"/pubsub/orderpubsub/topics/{topic}"
    assert second.event.datacontenttype == "application/octet-stream"
    assert second.event.data == b"\x00\x01 not json"
    assert first.event.id.startswith(f"{topic}/") and first.event.id != second.event.id
    await second.ack()
    await leaver.close(drain_timeout=0)  # leaves the first one unacked
    replacement = await bus.subscribe(topic, "g")
    again = await receive(replacement)
    assert again.event == first.event and again.attempt == 2
    await again.ack()
    await replacement.close()


async def test_an_invalid_cloudevent_becomes_undecodable_and_the_rest_still_arrive(
    bus: MqttBus, raw: RawClient, topic: str
) -> None:
    sub = await bus.subscribe(topic, "g")
    broken = orjson.dumps({"specversion": "1.0", "id": "x", "type": "t"})  # no source
    await asyncio.to_thread(raw.publish, topic, broken)
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="after"))
    poison, good = await receive(sub), await receive(sub)
    assert poison.event.type == UNDECODABLE_TYPE
    assert poison.event.data == broken
    assert "source" in poison.event.extensions["fnerrorreason"]
    assert good.event.id == "after"
    await poison.ack()
    await good.ack()
    await sub.close()


# -- members and their sessions --------------------------------------------------------


def test_member_client_ids_are_short_stable_and_distinct() -> None:
    ids = {
        member_client_id("checkout", "orders", "shop/orders", 0),
        member_client_id("checkout", "orders", "shop/orders", 1),
        member_client_id("checkout", "orders", "shop/returns", 0),
        member_client_id("checkout", "billing", "shop/orders", 0),
    }
    assert len(ids) == 4
    assert member_client_id("checkout", "orders", "shop/orders", 0) in ids
    long = member_client_id("a-very-long-consumer-id-" * 3, "group/with spaces", "t", 3)
    assert len(long) <= MAX_CLIENT_ID
    assert long.endswith("-3") and " " not in long and "/" not in long


async def test_a_replacement_member_resumes_the_session_of_the_member_it_replaces(
    bus: MqttBus, topic: str
) -> None:
    first, second = await bus.subscribe(topic, "g"), await bus.subscribe(topic, "g")
    for n in range(10):
        await bus.publish(topic, CloudEvent.create("t", "/s", {"n": n}, id=f"ev-{n}"))
    held: list[str] = []
    for _ in range(5):  # the broker alternates; the second member takes half and acks none
        held.append((await receive(second)).event.id)
    await second.close(drain_timeout=0)
    taken = {m.event.id for m in [await receive(first) for _ in range(5)]}
    replacement = await bus.subscribe(topic, "g")  # the lowest free slot: the second's
    again = [await receive(replacement) for _ in range(5)]
    assert {m.event.id for m in again} == set(held)
    assert all(m.attempt == 2 for m in again)
    assert taken | set(held) == {f"ev-{n}" for n in range(10)}
    await first.close(drain_timeout=0)
    await replacement.close(drain_timeout=0)


async def test_concurrent_publishes_all_arrive(bus: MqttBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    events = [CloudEvent.create("t", "/s", {"n": n}, id=f"ev-{n}") for n in range(300)]
    await asyncio.gather(*(bus.publish(topic, e) for e in events))
    got = set()
    for _ in range(300):
        message = await receive(sub)
        got.add(message.event.id)
        await message.ack()
    assert got == {e.id for e in events}
    await sub.close()


async def test_group_names_that_mqtt_cannot_share_are_refused(bus: MqttBus, topic: str) -> None:
    with pytest.raises(BusError, match="group names cannot be empty"):
        await bus.subscribe(topic, "a/b")


# -- settings --------------------------------------------------------------------------


def plan(**metadata: str) -> BusPlan:
    return BusPlan(key="k", backend="pubsub.mqtt3", via="EventBus default", metadata=metadata)


def test_settings_read_dapr_names() -> None:
    loaded = bus_settings(
        plan(url="mqtts://user:p%40ss@broker:8884", consumerID="app", qos="2", retain="true")
    )
    assert (loaded.qos, loaded.retain, loaded.cleanSession) == (2, True, False)
    endpoint = loaded.endpoint
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("broker", 8884, True)
    assert (endpoint.username, endpoint.password) == ("user", "p@ss")
    assert bus_settings(plan(url="tcp://broker")).endpoint.address == "broker:1883"
    assert bus_settings(plan(url="ssl://broker")).endpoint.address == "broker:8883"
    bus = MqttBus(bus_settings(plan(url="tcp://user:secret@broker:1884")))
    assert bus.describe() == "MQTT at broker:1884"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"url": "tcp://h", "maxLen": "5"}, "unknown metadata 'maxLen'"),
        ({"qos": "1"}, "metadata 'url' is required"),
        ({"url": "tcp://h", "qos": "0"}, "metadata 'qos': 0 is at most once"),
        ({"url": "tcp://h", "qos": "3"}, "metadata 'qos': expected 1 or 2"),
        ({"url": "ws://h:9001"}, "metadata 'url': WebSocket urls are not supported"),
        ({"url": "h:1883"}, "metadata 'url': expected tcp://host"),
        ({"url": "tcp://u:secret@h:99999"}, r"'tcp://u:\*\*\*@h:99999' is not a number"),
        ({"url": "tcp://h", "caCert": "PEM"}, "metadata 'caCert': caCert needs a TLS url"),
        ({"url": "ssl://h", "clientCert": "PEM"}, "metadata 'clientKey': .* clientKey is missing"),
    ],
)
def test_bad_settings_name_the_field(metadata: dict[str, str], expected: str) -> None:
    with pytest.raises(ManifestError, match=expected) as caught:
        bus_settings(plan(**metadata))
    assert "secret" not in str(caught.value)


# -- TLS -------------------------------------------------------------------------------


def _openssl(workdir: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)


def make_certificates(workdir: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        workdir,
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=fnevents test CA",
    )
    (workdir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl(
            workdir,
            "req",
            *ec,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        _openssl(
            workdir,
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        )


def tls_mosquitto(certificates: Path) -> servers.Broker:
    """A Mosquitto that speaks only TLS and wants a client certificate from our CA."""
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto is None or shutil.which("openssl") is None:
        pytest.skip("needs Mosquitto and the openssl command")
    make_certificates(certificates)

    def command(port: int, workdir: Path) -> list[str]:
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"cafile {certificates}/ca.pem\ncertfile {certificates}/server.pem\n"
            f"keyfile {certificates}/server.key\nrequire_certificate true\n"
        )
        return [mosquitto, "-c", str(config)]

    return servers.Broker("mosquitto-tls", command)


async def test_tls_with_a_client_certificate_given_as_pem_text(
    topic: str, consumer: str, tmp_path: Path
) -> None:
    with servers.running(tls_mosquitto(tmp_path)) as broker:
        pem = {
            name: (tmp_path / name).read_text() for name in ("ca.pem", "client.pem", "client.key")
        }
        metadata = {
            "caCert": pem["ca.pem"],
            "clientCert": pem["client.pem"],
            "clientKey": pem["client.key"],
            "consumerID": consumer,
        }
        tls = MqttSettings.model_validate({"url": f"ssl://{broker.address}", **metadata})
        async with MqttBus(tls) as bus:
            sub = await bus.subscribe(topic, "g")
            big = CloudEvent.create("t", "/s", bytes(range(256)) * 1024)  # many TLS records
            small = CloudEvent.create("t", "/s", {"n": 1})
            await bus.publish(topic, big)
            await bus.publish(topic, small)
            got = [await receive(sub), await receive(sub)]
            assert [m.event for m in got] == [big, small]
            for message in got:
                await message.ack()
            await sub.close()
        untrusted = MqttSettings.model_validate({"url": f"ssl://{broker.address}"})
        with pytest.raises(BusError, match=r"cannot reach MQTT broker .*CERTIFICATE_VERIFY_FAILED"):
            await MqttBus(untrusted).start()


# -- outages ---------------------------------------------------------------------------


async def test_an_unreachable_broker_is_a_retriable_error_naming_it() -> None:
    address = f"127.0.0.1:{servers.free_port()}"
    bus = MqttBus(settings(address))
    started = time.monotonic()
    with pytest.raises(BusError, match=f"cannot reach MQTT broker at {address}") as caught:
        await bus.start()
    assert caught.value.retriable
    with pytest.raises(BusError) as on_subscribe:
        await bus.subscribe("t", "g")
    assert on_subscribe.value.retriable
    assert time.monotonic() - started < 1.0
    await bus.close()


def persistent_mosquitto() -> servers.Broker:
    """A broker of our own (the session one must not restart) that keeps sessions and
    queued messages across restarts (Mosquitto saves them on SIGTERM)."""
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto is None:
        pytest.skip("needs Mosquitto (amqtt, the fallback, keeps no sessions across restarts)")

    def command(port: int, workdir: Path) -> list[str]:
        config = workdir / "mosquitto.conf"
        config.write_text(
            # run as root, Mosquitto would drop to the 'mosquitto' user, which cannot write
            # to our private workdir; 'user root' keeps the caller's user either way
            f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
            "max_queued_messages 100000\n"
        )
        return [mosquitto, "-c", str(config)]

    return servers.Broker("mosquitto-persistent", command)


async def test_a_broker_restart_mid_run_loses_nothing(topic: str, consumer: str) -> None:
    """Events the broker held at the restart (queued for the member, or sent and not yet
    acked) come back from its saved sessions; the member re-subscribes on its own.

    Publishing resumes once the member reads again: Mosquitto 2.0 saves sessions and
    their queued messages but not shared subscriptions, so until a member re-subscribes
    after a restart, the broker has no subscription to route the group's events to."""
    with servers.running(persistent_mosquitto()) as broker:
        bus = MqttBus(settings(broker.address, consumerID=consumer))
        await bus.start()
        notes: list[str] = []
        sub = await ResilientSubscription(bus, topic, "g", report=notes.append).open()
        published: list[str] = []
        received: set[str] = set()
        everything = asyncio.Event()

        async def consume() -> None:
            async for message in sub:
                await asyncio.sleep(0.003)  # slower than publishing: a backlog builds up
                received.add(message.event.id)
                await message.ack()
                if len(received) >= 200 and received.issuperset(published):
                    everything.set()

        async def reading_again() -> None:
            while not any("again" in note for note in notes):
                await asyncio.sleep(0.01)

        consumer_task = asyncio.create_task(consume())
        for n in range(200):
            event = CloudEvent.create("t", "/s", {"n": n}, id=f"ev-{n}")
            await publish_until_accepted(bus, topic, event, None, notes.append)
            published.append(event.id)
            if n == 100:
                backlog = len(published) - len(received)
                await asyncio.to_thread(broker.restart)
                await asyncio.wait_for(reading_again(), 30)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything.wait(), 30)
        missing = sorted(set(published) - received)
        assert not missing, f"lost {missing}; notes: {notes}; broker log:\n{broker.log()}"
        assert backlog > 20, "the restart should find events queued for the member"
        assert any("reconnecting" in note for note in notes), notes
        await sub.close()
        consumer_task.cancel()
        await bus.close()


async def test_a_publishing_connection_cut_mid_burst_is_replaced_not_reused(
    topic: str, consumer: str
) -> None:
    """A broker restart (SIGTERM) while hundreds of publishes wait for their PUBACK: each
    of them fails retriable or lands, and publishing afterwards goes over a new
    connection, never over the one paho says is gone (events.bus.live.LiveClient)."""
    with servers.running(persistent_mosquitto()) as broker:
        bus = MqttBus(settings(broker.address, consumerID=consumer))
        await bus.start()
        first = bus._publishers.current()
        assert first is not None and first.alive
        burst: list[asyncio.Future[None]] = []
        stopped = asyncio.Event()

        async def publish_without_waiting() -> None:
            n = 0
            while not stopped.is_set():
                for _ in range(100):
                    event = CloudEvent.create("t", "/s", {"n": n}, id=f"burst-{n}")
                    burst.append(asyncio.ensure_future(bus.publish(topic, event)))
                    n += 1
                await asyncio.sleep(0.001)

        publisher = asyncio.create_task(publish_without_waiting())
        await asyncio.sleep(0.2)
        await asyncio.to_thread(broker.stop)  # SIGTERM while PUBACKs are owed
        stopped.set()
        await publisher
        outcomes = await asyncio.gather(*burst, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert failures, "the stop should cut the burst"
        assert all(isinstance(f, BusError) and f.retriable for f in failures), failures[:3]
        assert not first.alive
        await asyncio.to_thread(broker.start)
        notes: list[str] = []
        event = CloudEvent.create("t", "/s", {"n": -1}, id="after")
        await asyncio.wait_for(publish_until_accepted(bus, topic, event, None, notes.append), 15)
        now = bus._publishers.current()
        assert now is not None and now is not first and now.alive
        assert bus._publishers.generation == 2
        await bus.close()
