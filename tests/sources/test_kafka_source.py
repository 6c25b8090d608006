"""The Kafka source with a producer we did not write: confluent-kafka's Producer (librdkafka).

Each test runs the source in a Runtime with an in-memory bus, on its own topic and
its own event name (so its own default consumer group), against Tansu. It joins the
source conformance suite (``tests/sources/suite.py``); what only Kafka has (record keys,
tombstones, consumer groups and their offsets, the client settings) is tested here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

import pytest

from events.app.load import load_catalog
from events.bindings.kafka import to_binary
from events.brokers.kafka.client import client_options
from events.cloudevent import CloudEvent
from sources import kafka as kafka_source
from sources.contract import SourceIdentity
from tests.brokers.kafka import committed_offset
from tests.helpers import until
from tests.manifests import documents
from tests.sources import config
from tests.sources.config import Binding, Sent, SourceConfig, Upstream
from tests.sources.harness import Running, rfc3339_millis, validate
from tests.sources.suite import SourceConformance

confluent_kafka = pytest.importorskip(
    "confluent_kafka", reason="the foreign producer: pip install confluent-kafka"
)

pytestmark = pytest.mark.kafka

RECEIVE_TIMEOUT = 10.0
#: A group member waits out about half the session timeout before Tansu answers its
#: join, and a second member's join makes the first rejoin too.
SPLIT_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def short_sessions(monkeypatch) -> None:
    """Tansu answers a JoinGroup only after half the session timeout, and does not honour
    LeaveGroup: a short session keeps joins and rebalances to about a second."""
    monkeypatch.setattr(kafka_source, "SESSION_TIMEOUT", 2.0)


def manifests(event: str, brokers: str, **settings: object) -> str:
    spec = {"brokers": brokers, "authRequired": False, **settings}
    return documents.EMBEDDED_BUS + documents.eventsource("vehicles", "kafka", {event: spec})


def running(tmp_path, event: str, brokers: str, **settings: object) -> Running:
    """The event ``event`` reading ``brokers``, in a Runtime with an in-memory bus."""
    text = manifests(event, brokers, **settings)
    return Running(tmp_path, text, "vehicles", [event], RECEIVE_TIMEOUT)


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
        return rfc3339_millis(self.timestamp)


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


@pytest.fixture
def event() -> str:
    return f"orders-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic() -> str:
    return f"telemetry-{uuid.uuid4().hex[:10]}"


def oldest(topic: str) -> dict[str, str]:
    """Read the topic from its start: no race with the group's first join."""
    return {"topic": topic, "initialOffset": "oldest"}


class KafkaSourceConfig(SourceConfig):
    """A topic of its own per test, read from its start by an event (so a group) of its own;
    a test's records go to partition 0, in order, unless it spreads them by key."""

    kind = "kafka"
    wrapped_type = "dev.fnevents.kafka.record"
    receive_timeout = RECEIVE_TIMEOUT
    restart_timeout = SPLIT_TIMEOUT  # the stopped member stays in the group for a session
    split_timeout = SPLIT_TIMEOUT
    replica_messages = 40
    limits: ClassVar[dict[str, str]] = {
        config.CLEAN_SPLIT: "with two members, Tansu 0.6's coordinator never settles (each "
        "JoinGroup round elects both members leader in turn, each assigning itself every "
        "partition, and the generation climbs every second), so replicas are at least once under "
        "constant rebalancing, not a clean split",
    }

    @pytest.fixture
    def upstream(self, kafka_broker, event, topic) -> Upstream:
        return Upstream(kafka_broker.address, event, topic)

    def settings(self, upstream: Upstream) -> dict[str, object]:
        return {"brokers": upstream.address, "authRequired": False, **oldest(upstream.name)}

    def unreachable(self, upstream: Upstream, address: str) -> dict[str, object]:
        return {"brokers": address, "authRequired": False, "topic": upstream.name}

    def describes(self, upstream: Upstream, address: str) -> str:
        label, group = f"default/vehicles/{upstream.event}", f"default-esc-kafka-{upstream.event}"
        return f"kafka {label} from {address} topic {upstream.name} group {group}"

    def cannot_reach(self, upstream: Upstream, address: str) -> str:
        return f"cannot join group default-esc-kafka-{upstream.event} on Kafka at {address}"

    async def _send(self, upstream: Upstream, *records: dict[str, Any]) -> list[Sent]:
        reports = await asyncio.to_thread(_produce, upstream.address, upstream.name, list(records))
        return [
            Sent(
                id=report.id,
                raw=record.get("value") or b"",
                source=f"kafka://{upstream.address}/{upstream.name}",
                subject=record["key"].decode() if record.get("key") else None,
                time=report.time,  # the record's timestamp
            )
            for record, report in zip(records, reports, strict=True)
        ]

    async def produce(
        self, upstream: Upstream, payload: bytes, content_type: str | None = None
    ) -> Sent:
        headers = [("content-type", content_type.encode())] if content_type else []
        (sent,) = await self._send(upstream, {"value": payload, "headers": headers, "partition": 0})
        return sent

    async def produce_many(self, upstream: Upstream, count: int) -> list[Sent]:
        keyed = ({"key": b"vehicle-%d" % n, "value": b'{"n": %d}' % n} for n in range(count))
        sent = await self._send(upstream, *keyed)
        partitions = {s.id.rsplit("/", 2)[1] for s in sent}
        assert len(partitions) > 1, "the records span partitions"
        return sent

    async def produce_binding(self, upstream: Upstream, binding: Binding) -> Sent:
        """Binary mode: ``ce_`` headers and ``content-type``; the key is the partition key, as
        the binding's producers set it (it stays out of the event)."""
        headers = [(f"ce_{name}", value.encode()) for name, value in binding.attributes]
        if binding.content_type is not None:
            headers.append(("content-type", binding.content_type.encode()))
        key = dict(binding.attributes).get("partitionkey")
        record = {"key": key.encode() if key else None, "value": binding.data, "headers": headers}
        record["partition"] = 0
        (sent,) = await self._send(upstream, record)
        return sent


class TestKafkaSource(KafkaSourceConfig, SourceConformance):
    pass


# -- what records become ----------------------------------------------------------------


async def test_the_record_key_is_the_subject(tmp_path, kafka_broker, event, topic) -> None:
    async with running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
        keyed, plain = await produce(
            kafka_broker,
            topic,
            {"key": b"v7", "value": b'{"vehicle": "v7", "speed": 91.5}', "partition": 0},
            {"value": b"\x00\x01\xffraw", "partition": 0},
        )
        got = [await source.next(), await source.next()]
    assert got[0].subject == "v7", "the subject is the record key"
    assert got[1].subject is None, "no key, no subject"
    assert [e.id for e in got] == [keyed.id, plain.id]


async def test_tombstones_are_events_without_data(tmp_path, kafka_broker, event, topic) -> None:
    deleted = CloudEvent(id="gone-1", source="/vehicles", type="vehicle.deregistered")
    record = to_binary(deleted)
    assert record.value is None
    async with running(tmp_path, event, kafka_broker.address, **oldest(topic)) as source:
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


# -- groups and offsets -------------------------------------------------------------------


async def test_the_default_group_starts_at_the_newest_record(
    tmp_path, kafka_broker, event, topic
) -> None:
    (before,) = await produce(kafka_broker, topic, {"value": b'{"n": 0}', "partition": 0})
    group = f"default-esc-kafka-{event}"
    async with running(tmp_path, event, kafka_broker.address, topic=topic) as source:

        async def joined() -> bool:  # the group commits each partition's end when it joins
            return await committed_offset(kafka_broker.address, group, topic, 0) is not None

        await until(joined, f"group {group} pinned its start", RECEIVE_TIMEOUT)
        assert await committed_offset(kafka_broker.address, group, topic, 0) == before.offset + 1
        (after,) = await produce(kafka_broker, topic, {"value": b'{"n": 1}', "partition": 0})
        got = await source.next()
        output = source.output

        async def committed_past_it() -> bool:
            return await committed_offset(kafka_broker.address, group, topic, 0) == after.offset + 1

        await until(committed_past_it, "the emitted record's offset is committed", RECEIVE_TIMEOUT)
    assert got.id == after.id, "the record produced before the group existed is not read"
    line = f"kafka {source.label} from {kafka_broker.address} topic {topic} group {group}"
    assert line in output


async def test_a_named_group_resumes_after_its_committed_offset(
    tmp_path, kafka_broker, event, topic
) -> None:
    group = f"billing-{event}"
    settings = {**oldest(topic), "consumerGroup": group}
    async with running(tmp_path, event, kafka_broker.address, **settings) as source:
        first = await produce(
            kafka_broker, topic, *({"value": b"%d" % n, "partition": 1} for n in range(3))
        )
        assert [(await source.next()).id for _ in first] == [r.id for r in first]

        async def all_committed() -> bool:
            return (
                await committed_offset(kafka_broker.address, group, topic, 1)
                == first[-1].offset + 1
            )

        await until(all_committed, "the three records are committed", RECEIVE_TIMEOUT)
    later = await produce(kafka_broker, topic, {"value": b"3", "partition": 1})
    async with running(tmp_path, event, kafka_broker.address, **settings) as source:
        got = await source.next(timeout=SPLIT_TIMEOUT)
    assert got.id == later[0].id, "nothing committed is read again"


# -- failures and settings ------------------------------------------------------------------


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
    code, err = validate(tmp_path, capsys, manifests("orders", "127.0.0.1:9092", **settings))
    assert code == 1
    assert "spec.kafka.orders" in err and expected in err, err
    assert "Traceback" not in err


def test_openfunction_settings_become_client_options(tmp_path, capsys) -> None:
    settings = {
        "topic": "events-sample",
        "maxMessageBytes": "1024",
        "scaleOption": {"minReplicaCount": 0, "maxReplicaCount": 10, "lagThreshold": "10"},
    }
    text = manifests("sample-one", "kafka-0:9092,kafka-1:9092", **settings)
    code, err = validate(tmp_path, capsys, text)
    assert code == 0, err
    path = tmp_path / "app.yaml"

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
