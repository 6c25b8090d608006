"""The Kafka source with a producer we did not write: confluent-kafka's Producer (librdkafka).

Each test runs the source in a Runtime with an in-memory bus, on its own topic and
its own event name (so its own default consumer group), against Tansu.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.app.cli import main
from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.bindings.kafka import to_binary
from events.bindings.structured import from_json
from events.brokers.kafka.client import client_options
from events.cloudevent import CloudEvent
from events.observability.console import Console
from sources import kafka as kafka_source
from sources.contract import SourceIdentity
from tests.brokers.servers import free_port
from tests.manifests.documents import EMBEDDED_BUS

confluent_kafka = pytest.importorskip(
    "confluent_kafka", reason="the foreign producer: pip install confluent-kafka"
)

pytestmark = pytest.mark.kafka

RECEIVE_TIMEOUT = 10.0
#: A group member waits out about half the session timeout before Tansu answers its
#: join, and a second member's join makes the first rejoin too.
SPLIT_TIMEOUT = 30.0

MANIFESTS = (
    EMBEDDED_BUS
    + """
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: vehicles}}
spec:
  eventBus: default
  kafka:
    {event}:
      brokers: "{brokers}"
      authRequired: false
{settings}
"""
)


@pytest.fixture(autouse=True)
def short_sessions(monkeypatch) -> None:
    """Tansu answers a JoinGroup only after half the session timeout, and does not honour
    LeaveGroup: a short session keeps joins and rebalances to about a second."""
    monkeypatch.setattr(kafka_source, "SESSION_TIMEOUT", 2.0)


def manifests(event: str, brokers: str, **settings: str) -> str:
    lines = "".join(f"      {name}: {value}\n" for name, value in settings.items())
    return MANIFESTS.format(event=event, brokers=brokers, settings=lines)


class Running:
    """The source in a Runtime with an in-memory bus; ``events`` and ``dead`` read the bus."""

    def __init__(self, tmp_path, event: str, brokers: str, **settings: str) -> None:
        path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(manifests(event, brokers, **settings))
        self.label = f"default/vehicles/{event}"
        self.topic = f"default-vehicles-{event}"
        self.output = io.StringIO()
        self.runtime = Runtime(load_catalog([str(path)], []), Console(stream=self.output))

    async def __aenter__(self) -> Running:
        await self.runtime.start()
        bus = next(iter(self.runtime.buses.values()))
        self.events = await bus.subscribe(self.topic, "test")
        self.dead = await bus.subscribe("default-vehicles-deadletter", "test")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop(drain_timeout=0.5)

    async def next(self, subscription=None, timeout: float = RECEIVE_TIMEOUT) -> CloudEvent:
        message = await asyncio.wait_for(anext(subscription or self.events), timeout)
        await message.ack()
        return message.event


class Produced:
    """Where the broker put one record, from librdkafka's delivery report."""

    def __init__(self, message) -> None:
        self.topic, self.partition, self.offset = (
            message.topic(),
            message.partition(),
            message.offset(),
        )
        self.timestamp = message.timestamp()[1]

    @property
    def id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def time(self) -> str:
        stamp = datetime.fromtimestamp(self.timestamp / 1000, UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _produce(brokers: str, topic: str, records: list[dict[str, Any]]) -> list[Produced]:
    producer = confluent_kafka.Producer({"bootstrap.servers": brokers, "log_level": 3})
    reports: list[Any] = [None] * len(records)

    def delivered(index: int):
        def report(error, message) -> None:
            assert error is None, f"record {index} was not produced: {error}"
            reports[index] = Produced(message)

        return report

    for index, record in enumerate(records):
        producer.produce(topic, on_delivery=delivered(index), **record)
    assert producer.flush(RECEIVE_TIMEOUT) == 0, "records still queued in librdkafka"
    return reports


async def produce(broker, topic: str, *records: dict[str, Any]) -> list[Produced]:
    """Produce with confluent-kafka in a thread (flush blocks); each record's delivery report."""
    return await asyncio.to_thread(_produce, broker.address, topic, list(records))


async def committed(broker, group: str, topic: str, partition: int) -> int | None:
    """A group's committed offset, read without joining it (Tansu has no
    list_consumer_group_offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.address, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, partition))
    finally:
        await consumer.stop()


async def until(condition, what: str, timeout: float = RECEIVE_TIMEOUT) -> None:
    """Poll a real condition (a broker's answer) until it holds."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


@pytest.fixture
def event() -> str:
    return f"orders-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic() -> str:
    return f"telemetry-{uuid.uuid4().hex[:10]}"


def oldest(topic: str) -> dict[str, str]:
    """Read the topic from its start: no race with the group's first join."""
    return {"topic": topic, "initialOffset": "oldest"}


# -- what records become ----------------------------------------------------------------


async def test_plain_json_is_wrapped_with_the_record_position_as_its_id(
    tmp_path, kafka_broker, event, topic
) -> None:
    async with Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        (sent,) = await produce(
            kafka_broker, topic, {"key": b"v7", "value": b'{"vehicle": "v7", "speed": 91.5}'}
        )
        got = await source.next()
    assert got.type == "dev.fnevents.kafka.record"
    assert got.source == f"kafka://{kafka_broker.address}/{topic}"
    assert got.subject == "v7", "the subject is the record key"
    assert got.id == sent.id == f"{topic}/{sent.partition}/{sent.offset}"
    assert got.time == sent.time, "time is the record's timestamp"
    assert got.datacontenttype == "application/json"
    assert got.data == {"vehicle": "v7", "speed": 91.5}


async def test_values_that_are_not_json_keep_their_bytes_or_declared_type(
    tmp_path, kafka_broker, event, topic
) -> None:
    csv = b"v7,91.5\n"
    async with Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        sent = await produce(
            kafka_broker,
            topic,
            {"value": b"\x00\x01\xffraw", "partition": 0},
            {"value": csv, "headers": [("content-type", b"text/csv")], "partition": 0},
            {"value": b"", "partition": 0},
        )
        got = [await source.next() for _ in sent]
    binary, text, empty = got
    assert (binary.datacontenttype, binary.data) == ("application/octet-stream", b"\x00\x01\xffraw")
    assert binary.subject is None, "no key, no subject"
    assert (text.datacontenttype, text.data) == ("text/csv", csv.decode())
    assert (empty.datacontenttype, empty.data) == ("text/plain", "")
    assert [e.id for e in got] == [s.id for s in sent], "one partition: in offset order"


async def test_cloudevents_binary_mode_passes_through_with_its_extensions(
    tmp_path, kafka_broker, event, topic
) -> None:
    original = CloudEvent(
        id="reading-1",
        source="/vehicles/7",
        type="telemetry.reading",
        subject="v7",
        time="2024-05-01T12:30:45Z",
        datacontenttype="application/json",
        extensions={"fleet": "north", "partitionkey": "v7"},
        data={"speed": 120},
    )
    record = to_binary(original)  # the headers as any binding writes them; produced by librdkafka
    assert any(name == "ce_fleet" for name, _ in record.headers)
    async with Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        await produce(
            kafka_broker,
            topic,
            {"key": record.key, "value": record.value, "headers": record.headers},
        )
        got = await source.next()
    assert got == original


async def test_structured_cloudevents_pass_through_with_or_without_the_header(
    tmp_path, kafka_broker, event, topic
) -> None:
    body = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "s-1",
            "source": "/vehicles/7",
            "type": "telemetry.reading",
            "datacontenttype": "application/json",
            "fleet": "north",
            "data": {"speed": 120},
        }
    )
    dapr_style = orjson.dumps({"specversion": "1.0", "id": "d-1", "source": "app", "type": "t"})
    structured = [("content-type", b"application/cloudevents+json; charset=UTF-8")]
    async with Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        await produce(
            kafka_broker,
            topic,
            {"value": body, "headers": structured, "partition": 1},
            {"value": dapr_style, "partition": 1},
        )
        first, second = await source.next(), await source.next()
    assert first == from_json(body)
    assert second == from_json(dapr_style), "a JSON object with specversion is a CloudEvent"


async def test_tombstones_are_events_without_data(tmp_path, kafka_broker, event, topic) -> None:
    deleted = CloudEvent(id="gone-1", source="/vehicles", type="vehicle.deregistered")
    record = to_binary(deleted)
    assert record.value is None
    async with Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        plain, _ = await produce(
            kafka_broker,
            topic,
            {"key": b"v7", "value": None, "partition": 2},
            {"value": None, "headers": record.headers, "partition": 2},
        )
        wrapped, passed = await source.next(), await source.next()
    assert (wrapped.type, wrapped.subject, wrapped.id) == (
        "dev.fnevents.kafka.record",
        "v7",
        plain.id,
    )
    assert (wrapped.data, wrapped.datacontenttype) == (None, None)
    assert passed == deleted


async def test_bad_records_go_to_the_dead_letter_and_later_ones_still_arrive(
    tmp_path, kafka_broker, event, topic
) -> None:
    no_id = [
        ("ce_specversion", b"1.0"),
        ("ce_source", b"/vehicles/7"),
        ("ce_type", b"telemetry.reading"),
    ]
    json_header = [("content-type", b"application/json")]
    async with Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        bad_event, bad_json, good = await produce(
            kafka_broker,
            topic,
            {"value": b'{"speed": 1}', "headers": no_id, "partition": 3},
            {"value": b"{not json", "headers": json_header, "partition": 3},
            {"value": b'{"speed": 3}', "partition": 3},
        )
        letters = [await source.next(source.dead), await source.next(source.dead)]
        after = await source.next()
        metrics = source.runtime.metrics.exposition().decode()
    assert [letter.type for letter in letters] == ["dev.fnevents.source.rejected"] * 2
    assert [letter.id for letter in letters] == [
        f"rejected:{bad_event.id}",
        f"rejected:{bad_json.id}",
    ]
    assert [letter.data for letter in letters] == [b'{"speed": 1}', b"{not json"], "raw bytes"
    assert "'id'" in letters[0].extensions["fnerrorreason"]
    assert "not valid JSON" in letters[1].extensions["fnerrorreason"]
    assert (after.id, after.data) == (good.id, {"speed": 3})
    assert f'fnevents_source_rejected_total{{source="{source.label}"}} 2.0' in metrics


# -- groups and offsets -------------------------------------------------------------------


async def test_the_default_group_starts_at_the_newest_record(
    tmp_path, kafka_broker, event, topic
) -> None:
    (before,) = await produce(kafka_broker, topic, {"value": b'{"n": 0}', "partition": 0})
    group = f"default-esc-kafka-{event}"
    async with Running(tmp_path, event, kafka_broker.address, topic=topic) as source:

        async def joined() -> bool:  # the group commits each partition's end when it joins
            return await committed(kafka_broker, group, topic, 0) is not None

        await until(joined, f"group {group} pinned its start")
        assert await committed(kafka_broker, group, topic, 0) == before.offset + 1
        (after,) = await produce(kafka_broker, topic, {"value": b'{"n": 1}', "partition": 0})
        got = await source.next()
        output = source.output.getvalue()

        async def committed_past_it() -> bool:
            return await committed(kafka_broker, group, topic, 0) == after.offset + 1

        await until(committed_past_it, "the emitted record's offset is committed")
    assert got.id == after.id, "the record produced before the group existed is not read"
    line = f"kafka {source.label} from {kafka_broker.address} topic {topic} group {group}"
    assert line in output


async def test_a_named_group_resumes_after_its_committed_offset(
    tmp_path, kafka_broker, event, topic
) -> None:
    group = f"billing-{event}"
    settings = {**oldest(topic), "consumerGroup": group}
    async with Running(tmp_path, event, kafka_broker.address, **settings) as source:
        first = await produce(
            kafka_broker, topic, *({"value": b"%d" % n, "partition": 1} for n in range(3))
        )
        assert [(await source.next()).id for _ in first] == [r.id for r in first]

        async def all_committed() -> bool:
            return await committed(kafka_broker, group, topic, 1) == first[-1].offset + 1

        await until(all_committed, "the three records are committed")
    later = await produce(kafka_broker, topic, {"value": b"3", "partition": 1})
    async with Running(tmp_path, event, kafka_broker.address, **settings) as source:
        got = await source.next(timeout=SPLIT_TIMEOUT)
    assert got.id == later[0].id, "nothing committed is read again"


async def test_two_sources_in_one_group_lose_nothing_between_them(
    tmp_path, kafka_broker, event, topic
) -> None:
    """Two replicas of one manifest share the group and, between them, read every record.

    A clean split of the partitions is not asserted: with two members, Tansu 0.6's
    coordinator never settles (each JoinGroup round elects both members leader in turn,
    each assigning itself every partition, and the generation climbs every second).
    So this is at least once under constant rebalancing, which is the harder case."""
    async with (
        Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as one,
        Running(tmp_path, event, kafka_broker.address, **oldest(topic)) as two,
    ):
        seen: set[str] = set()

        async def drain(source: Running) -> None:
            while True:
                seen.add((await source.next(timeout=SPLIT_TIMEOUT)).id)

        readers = [asyncio.create_task(drain(one)), asyncio.create_task(drain(two))]
        try:
            produced = await produce(
                kafka_broker,
                topic,
                *({"key": b"vehicle-%d" % n, "value": b'{"n": %d}' % n} for n in range(40)),
            )
            ids = {r.id for r in produced}

            async def all_read() -> bool:
                return ids <= seen

            await until(all_read, "every record was read by one of the two", SPLIT_TIMEOUT)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    assert len({r.partition for r in produced}) > 1, "the records span partitions"


# -- failures and settings ------------------------------------------------------------------


async def test_unreachable_brokers_are_reported_by_address_and_retried(
    tmp_path, event, topic
) -> None:
    brokers = f"127.0.0.1:{free_port()}"
    async with Running(tmp_path, event, brokers, topic=topic) as source:

        async def reported() -> bool:
            return "retrying with backoff" in source.output.getvalue()

        await until(reported, "the source reported the outage")
        output = source.output.getvalue()
        metrics = source.runtime.metrics.exposition().decode()
    assert f"cannot join group default-esc-kafka-{event} on Kafka at {brokers}" in output
    assert "Traceback" not in output
    assert f'fnevents_source_errors_total{{source="{source.label}"}}' in metrics


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "topic: required"),
        ({"topic": "a,b"}, "one topic per event"),
        ({"topic": "t", "authRequired": "true"}, "saslUsername: required when authRequired"),
        ({"topic": "t", "caCert": "pem"}, "caCert: set 'tls: true'"),
        ({"topic": "t", "tls": "true", "clientCert": "pem"}, "give both clientCert and clientKey"),
        ({"topic": "t", "initialOffset": "latest"}, "initialOffset"),
    ],
)
def test_settings_errors_name_the_field(tmp_path, capsys, settings, expected) -> None:
    path = tmp_path / "app.yaml"
    text = manifests("orders", "127.0.0.1:9092", **settings)
    if "authRequired" in settings:
        text = text.replace("      authRequired: false\n", "")
    path.write_text(text)
    assert main(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "spec.kafka.orders" in err and expected in err, err
    assert "Traceback" not in err


def test_openfunction_settings_become_client_options(tmp_path, capsys) -> None:
    path = tmp_path / "app.yaml"
    settings = {
        "topic": "events-sample",
        "maxMessageBytes": "1024",
        "scaleOption": "{minReplicaCount: 0, maxReplicaCount: 10, lagThreshold: '10'}",
    }
    path.write_text(manifests("sample-one", "kafka-0:9092,kafka-1:9092", **settings))
    assert main(["validate", "-f", str(path)]) == 0, capsys.readouterr().err

    spec = load_catalog([str(path)], []).of_kind("EventSource")[0].resource.spec.kafka
    plain = kafka_source.client_settings(spec["sample-one"], "g")
    assert client_options(plain)["bootstrap_servers"] == ["kafka-0:9092", "kafka-1:9092"]
    assert "security_protocol" not in client_options(plain)
    sasl = spec["sample-one"].model_copy(
        update={"authRequired": True, "saslUsername": "u", "saslPassword": "p"}
    )
    options = client_options(kafka_source.client_settings(sasl, "g"))
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT", "PLAIN")
    identity = SourceIdentity("default", "vehicles", "sample-one")
    assert "in clear" in kafka_source.KafkaSource(identity, sasl).notices()[0]
    with_tls = sasl.model_copy(update={"tls": True, "saslMechanism": "SCRAM-SHA-512"})
    options = client_options(kafka_source.client_settings(with_tls, "g"))
    assert (options["security_protocol"], options["sasl_mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert kafka_source.KafkaSource(identity, with_tls).notices() == []
    tls_only = spec["sample-one"].model_copy(update={"tls": True})
    assert client_options(kafka_source.client_settings(tls_only, "g"))["security_protocol"] == "SSL"
