"""What the Kafka backend adds to the contract: Dapr and CloudEvents interop on the wire,
commit semantics, settings, and surviving broker restarts.

Records are written and read with plain aiokafka clients where the test is about the
wire, so nothing here trusts KafkaBus to agree with itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from events.app.plans import BusPlan
from events.bindings.kafka import to_binary
from events.brokers.kafka.bus import KafkaBus, KafkaSettings
from events.brokers.kafka.client import client_options, group_id
from events.brokers.kafka.offsets import PartitionOffsets
from events.brokers.registry import bus_settings
from events.bus.envelope import RAW_TYPE, UNDECODABLE_TYPE
from events.bus.resilient import publish_until_accepted
from events.cloudevent import CloudEvent
from events.errors import BusError, ManifestError
from tests.brokers import servers
from tests.brokers.kafka import committed_offset
from tests.helpers import nothing_within, receive

pytestmark = pytest.mark.kafka

TIMEOUT = 10.0
#: A member of a group that a closed member was in waits out the session timeout (Tansu
#: does not honour LeaveGroup), then the rebalance.
REJOIN_TIMEOUT = 20.0
FAST = {"sessionTimeout": "2s", "heartbeatInterval": "500ms", "commitInterval": "100ms"}


def settings(broker, **extra: str) -> KafkaSettings:
    return KafkaSettings.model_validate({"brokers": broker.address, **FAST, **extra})


@pytest.fixture
def topic() -> str:
    return f"kafka-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def bus(kafka_broker):
    async with KafkaBus(settings(kafka_broker), pubsub_name="orders-pubsub") as started:
        yield started


@pytest.fixture
async def producer(kafka_broker):
    raw = AIOKafkaProducer(bootstrap_servers=kafka_broker.address, enable_idempotence=False)
    await raw.start()
    yield raw
    await raw.stop()


def event(n: int, **extra) -> CloudEvent:
    return CloudEvent.create("test.kafka", "/tests/kafka", {"n": n}, id=f"ev-{n}", **extra)


# -- interop: what Dapr (and other CloudEvents producers) write, and what we write ---------


async def test_a_dapr_envelope_is_delivered_as_its_event_with_its_key(bus, producer, topic):
    sub = await bus.subscribe(topic, "g")
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    dapr_envelope = {
        "specversion": "1.0",
        "id": "5f3c0a9e-dapr",
        "source": "checkout",
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "topic": topic,
        "pubsubname": "kafka-pubsub",
        "traceid": trace,
        "traceparent": trace,
        "tracestate": "",
        "time": "2024-05-01T12:30:45Z",
        "data": {"orderId": 7},
    }
    await producer.send_and_wait(topic, orjson.dumps(dapr_envelope), key=b"k1")
    message = await receive(sub, TIMEOUT)
    assert message.key == "k1"
    assert message.event == CloudEvent(
        id="5f3c0a9e-dapr",
        source="checkout",
        type="com.dapr.event.sent",
        datacontenttype="application/json",
        time="2024-05-01T12:30:45Z",
        extensions={"traceparent": trace, "tracestate": ""},
        data={"orderId": 7},
    )
    await message.ack()
    await sub.close()


async def test_what_we_publish_is_a_dapr_envelope_keyed_by_the_key(bus, kafka_broker, topic):
    await bus.publish(topic, event(1, subject="order-7"), key="k1")
    await bus.publish(topic, event(2, partitionkey="vehicle-9"))  # no key: partitionkey
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.address,
        group_id=f"raw-{topic}",
        auto_offset_reset="earliest",
        session_timeout_ms=2000,  # Tansu holds a JoinGroup for half of it
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    records = []
    try:
        async with asyncio.timeout(TIMEOUT):
            while len(records) < 2:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    by_id = {orjson.loads(r.value)["id"]: r for r in records}
    first = orjson.loads(by_id["ev-1"].value)
    assert by_id["ev-1"].key == b"k1"
    assert by_id["ev-2"].key == b"vehicle-9"
    assert first["specversion"] == "1.0"
    assert first["type"] == "test.kafka"
    assert first["source"] == "/tests/kafka"
    assert first["subject"] == "order-7"
    assert (first["topic"], first["pubsubname"]) == (topic, "orders-pubsub")
    assert first["datacontenttype"] == "application/json"
    assert first["data"] == {"n": 1}
    headers = dict(by_id["ev-1"].headers)
    assert headers["content-type"].startswith(b"application/cloudevents+json")


async def test_cloudevents_binary_mode_records_are_read(bus, producer, topic):
    sub = await bus.subscribe(topic, "g")
    original = CloudEvent.create(
        "com.example.reading", "/sensors/7", b"\x00\x01raw", datacontenttype="image/png"
    ).evolve(partitionkey="sensor-7")
    record = to_binary(original)
    await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    message = await receive(sub, TIMEOUT)
    assert message.event == original
    assert message.key == "sensor-7"
    await message.ack()
    await sub.close()


async def test_plain_and_invalid_payloads_do_not_stop_the_consumer(bus, producer, topic):
    sub = await bus.subscribe(topic, "g")
    sent = [
        await producer.send_and_wait(topic, b"\xff not json", key=b"k"),
        await producer.send_and_wait(topic, b'{"temperature": 21}', key=b"k"),
        await producer.send_and_wait(topic, b'{"specversion": "1.0", "id": "x"}', key=b"k"),
    ]
    valid = {"specversion": "1.0", "id": "ev-9", "source": "/s", "type": "t"}
    await producer.send_and_wait(topic, orjson.dumps(valid), key=b"k")
    got = [await receive(sub, TIMEOUT) for _ in range(4)]
    ids = [f"{topic}/{m.partition}/{m.offset}" for m in sent]
    assert [m.event.id for m in got] == [*ids, "ev-9"]
    assert got[0].event.type == RAW_TYPE
    assert got[0].event.data == b"\xff not json"
    assert got[1].event.type == RAW_TYPE
    assert got[1].event.data == {"temperature": 21}
    assert got[2].event.type == UNDECODABLE_TYPE
    assert "source" in got[2].event.extensions["fnerrorreason"]
    assert got[3].event.type == "t"
    for message in got:
        await message.ack()
    await sub.close()


# -- offsets: what is committed, what comes back ------------------------------------------


async def test_only_the_unacked_tail_is_replayed_to_the_next_member(bus, kafka_broker, topic):
    first = await bus.subscribe(topic, "g")
    for n in range(10):
        await bus.publish(topic, event(n), key="one-partition")
    got = [await receive(first, TIMEOUT) for _ in range(10)]
    for message in got:
        if message.event.data["n"] != 3:
            await message.ack()
    await first.close(drain_timeout=0.1)  # #3 still unacked

    name = group_id(bus._settings, "g", topic)
    assert (
        await committed_offset(kafka_broker.address, name, topic, got[3].partition) == got[3].offset
    )
    second = await bus.subscribe(topic, "g")
    again = [await receive(second, REJOIN_TIMEOUT) for _ in range(7)]
    assert [m.event.data["n"] for m in again] == list(range(3, 10))
    assert all(m.attempt == 1 for m in again), "Kafka keeps no count across members"
    for message in again:
        await message.ack()
    assert await nothing_within(second, 0.5)
    await second.close()


async def test_a_nack_does_not_hold_up_its_partition_but_holds_back_the_commit(bus, topic):
    sub = await bus.subscribe(topic, "g")
    for n in range(5):
        await bus.publish(topic, event(n), key="same")
    head = await receive(sub, TIMEOUT)
    assert head.event.data["n"] == 0
    await head.nack(delay=0.5)
    rest = [await receive(sub, TIMEOUT) for _ in range(4)]
    assert [m.event.data["n"] for m in rest] == [1, 2, 3, 4], "later records keep flowing"
    for message in rest:
        await message.ack()
    again = await receive(sub, TIMEOUT)
    assert (again.event.data["n"], again.attempt) == (0, 2)
    await sub.close(drain_timeout=0.1)  # a crash, as far as #0 is concerned: never acked

    replacement = await bus.subscribe(topic, "g")
    replayed = [await receive(replacement, REJOIN_TIMEOUT) for _ in range(5)]
    assert [m.event.data["n"] for m in replayed] == [0, 1, 2, 3, 4]
    for message in replayed:
        await message.ack()
    await replacement.close()


async def test_messages_in_flight_during_a_rebalance_come_back(bus, topic):
    first = await bus.subscribe(topic, "g")
    for n in range(8):
        await bus.publish(topic, event(n), key=f"key-{n}")
    held = [await receive(first, TIMEOUT) for _ in range(8)]
    second = await bus.subscribe(topic, "g")  # every partition is revoked, then shared out
    for message in held:
        await message.ack()  # too late: the partitions moved, so these acks must not count
    seen: list[int] = []

    async def drain(sub) -> None:
        with contextlib.suppress(TimeoutError):
            while True:
                message = await receive(sub, 3.0)
                seen.append(message.event.data["n"])
                await message.ack()

    async with asyncio.timeout(REJOIN_TIMEOUT):
        await asyncio.gather(drain(first), drain(second))
    assert sorted(seen) == list(range(8)), "nothing committed, so everything is read again"
    await first.close()
    await second.close()


async def test_a_member_stops_reading_at_max_pending(kafka_broker, topic):
    async with KafkaBus(settings(kafka_broker, maxPending="3")) as bus:
        sub = await bus.subscribe(topic, "g")
        for n in range(10):
            await bus.publish(topic, event(n), key="same")
        held = [await receive(sub, TIMEOUT) for _ in range(3)]
        assert await nothing_within(sub, 0.5), "three unacked: reading pauses"
        await held[0].ack()
        assert (await receive(sub, TIMEOUT)).event.data["n"] == 3
        await sub.close(drain_timeout=0)


async def test_newest_pins_the_start_before_subscribe_returns(kafka_broker, topic):
    async with KafkaBus(settings(kafka_broker, initialOffset="newest")) as bus:
        sub = await bus.subscribe(topic, "g")
        name = group_id(bus._settings, "g", topic)
        for partition in range(4):
            assert await committed_offset(kafka_broker.address, name, topic, partition) is not None
        await bus.publish(topic, event(1))
        message = await receive(sub, TIMEOUT)
        assert message.event.id == "ev-1"
        await message.ack()
        await sub.close()


def test_offsets_commit_only_below_the_lowest_unacked() -> None:
    offsets = PartitionOffsets()
    assert offsets.to_commit() is None
    for offset in (5, 6, 7, 9):  # 8 was compacted away
        offsets.read(offset)
    assert offsets.ack(6) == 0 and offsets.ack(9) == 0
    assert offsets.position() == 5
    assert offsets.ack(5) == 2  # 5 and the already acked 6
    assert offsets.position() == 7
    assert offsets.ack(7) == 2
    assert (offsets.position(), offsets.outstanding) == (10, 0)


# -- settings and connecting ---------------------------------------------------------------


def _plan(**metadata: str) -> BusPlan:
    return BusPlan(key="k", backend="pubsub.kafka", via="EventBus default/kafka", metadata=metadata)


def test_unknown_metadata_is_rejected_by_name() -> None:
    with pytest.raises(ManifestError, match=r"unknown metadata 'brokerList' for pubsub\.kafka"):
        bus_settings(_plan(brokers="b:9092", brokerList="b:9092"))


def test_brokers_are_required() -> None:
    with pytest.raises(ManifestError, match=r"metadata 'brokers' is required for pubsub\.kafka"):
        bus_settings(_plan(consumerGroup="app"))


@pytest.mark.parametrize(
    ("metadata", "field", "problem"),
    [
        ({"authType": "password"}, "saslUsername", "required when authType is 'password'"),
        ({"authType": "oidc"}, "authType", "'oidc' is not supported by fnevents"),
        ({"authType": "mtls", "clientKey": "k"}, "clientCert", "required when authType is 'mtls'"),
        ({"initialOffset": "latest"}, "initialOffset", "'oldest' or 'newest'"),
        ({"heartbeatInterval": "20s"}, "heartbeatInterval", "shorter than sessionTimeout"),
        ({"saslMechanism": "GSSAPI"}, "saslMechanism", "expected PLAIN, SHA-256 or SHA-512"),
    ],
)
def test_bad_settings_name_the_field(metadata, field, problem) -> None:
    with pytest.raises(ManifestError, match=f"metadata '{field}': .*{problem}"):
        bus_settings(_plan(brokers="b:9092", **metadata))


def test_settings_become_client_options() -> None:
    plain = KafkaSettings(brokers=" a:9092 , b:9093 ", version="2.0.0")
    assert client_options(plain)["bootstrap_servers"] == ["a:9092", "b:9093"]
    assert "security_protocol" not in client_options(plain)
    assert "api_version" not in client_options(plain), "deprecated (a no-op) in aiokafka"
    sasl = KafkaSettings(
        brokers="a:9092",
        authType="password",
        saslUsername="u",
        saslPassword="p",
        saslMechanism="SHA-512",
        disableTls=True,
    )
    options = client_options(sasl)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "p")
    tls = client_options(sasl.model_copy(update={"disableTls": False}))
    assert tls["security_protocol"] == "SASL_SSL" and tls["ssl_context"] is not None


async def test_an_unreachable_broker_is_a_retriable_error_naming_it() -> None:
    address = f"127.0.0.1:{servers.free_port()}"
    bus = KafkaBus(KafkaSettings(brokers=address))
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(BusError, match=f"cannot reach Kafka at {address}") as caught:
            await bus.start()
    assert caught.value.retriable
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(
            BusError, match=f"cannot join group g.t on Kafka at {address}"
        ) as caught:
            await bus.subscribe("t", "g")
    assert caught.value.retriable
    await bus.close()


# -- broker restarts -----------------------------------------------------------------------


async def test_a_broker_restart_loses_nothing(topic) -> None:
    with servers.durable_kafka() as tansu:
        async with KafkaBus(settings(tansu)) as bus:
            sub = await bus.subscribe(topic, "g")
            for n in range(20):
                await bus.publish(topic, event(n), key=f"key-{n % 4}")
            seen: set[int] = set()
            for _ in range(10):
                message = await receive(sub, TIMEOUT)
                seen.add(message.event.data["n"])
                await message.ack()
            await asyncio.sleep(0.3)  # a commit interval or three
            await asyncio.to_thread(tansu.restart)

            async def publish_more() -> None:
                for n in range(20, 40):
                    await publish_until_accepted(bus, topic, event(n), f"key-{n % 4}", print)

            publisher = asyncio.create_task(publish_more())
            async with asyncio.timeout(60):
                while len(seen) < 40:
                    message = await receive(sub, 60)
                    seen.add(message.event.data["n"])
                    await message.ack()
            await publisher
            assert seen == set(range(40))
            await sub.close()


async def test_clients_reconnect_after_a_restart_of_a_memory_broker(topic) -> None:
    """Tansu's memory storage forgets everything on restart, so only what is published
    after it can be asked for; the point is that producer and consumer both come back."""
    with servers.running(servers.kafka()) as tansu:
        async with KafkaBus(settings(tansu)) as bus:
            sub = await bus.subscribe(topic, "g")
            await asyncio.to_thread(tansu.restart)
            for n in range(10):
                await publish_until_accepted(bus, topic, event(n), f"key-{n % 4}", print)
            seen: set[int] = set()
            async with asyncio.timeout(60):
                while len(seen) < 10:
                    message = await receive(sub, 60)
                    seen.add(message.event.data["n"])
                    await message.ack()
            await sub.close()
