"""The Kafka source under faults, as a real process: ``python -m events.cli.entry run`` on a Redis
bus, fed by confluent-kafka's Producer (librdkafka), counted on the bus.

- kill -9 of the source process mid-stream, then a restart: every record's id
  (``topic/partition/offset``) reaches the bus at least once, duplicates counted, and a
  clean stop afterwards leaves every partition committed to its end;
- a restart of the Kafka broker mid-stream: Tansu on durable storage (S3, served by
  moto), so records and committed offsets survive; everything produced before and
  after the restart reaches the bus.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from pathlib import Path

import orjson
import pytest
import redis
from aiokafka import TopicPartition

from tests.brokers import servers
from tests.brokers.kafka import committed
from tests.e2e import processes
from tests.helpers import wait_until
from tests.manifests import documents

confluent_kafka = pytest.importorskip(
    "confluent_kafka", reason="the foreign producer: pip install confluent-kafka"
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

ARRIVAL_TIMEOUT = 60.0


def output(log: Path) -> str:
    return log.read_text(errors="replace")[-6000:]


class BusTopic:
    """The source's topic on the Redis bus: the event ids on it, with repeats."""

    def __init__(self, address: str, event: str) -> None:
        host, _, port = address.rpartition(":")
        self.client = redis.Redis(host=host, port=int(port))
        self.name = f"default-vehicles-{event}"

    def ids(self) -> list[str]:
        return [
            orjson.loads(fields[b"data"])["id"]
            for _, fields in self.client.xrange(self.name, "-", "+")
        ]

    def count(self) -> int:
        return self.client.xlen(self.name)

    def close(self) -> None:
        self.client.delete(self.name)
        self.client.close()


def produce(brokers: str, topic: str, first: int, last: int) -> set[str]:
    """Records ``first`` .. ``last - 1`` with confluent-kafka; the ids they were given."""
    producer = confluent_kafka.Producer({"bootstrap.servers": brokers, "log_level": 3})
    ids: set[str] = set()
    failures: list[str] = []

    def report(error, message) -> None:
        if error is not None:
            failures.append(str(error))
        else:
            ids.add(f"{message.topic()}/{message.partition()}/{message.offset()}")

    for n in range(first, last):
        payload = orjson.dumps({"vehicle": f"v{n % 50}", "n": n})
        producer.produce(topic, payload, key=f"v{n % 50}".encode(), on_delivery=report)
        producer.poll(0)
    assert producer.flush(ARRIVAL_TIMEOUT) == 0, "records still queued in librdkafka"
    assert not failures, failures[:3]
    return ids


async def committed_and_ends(brokers: str, group: str, ids: set[str]) -> tuple[dict, dict]:
    """What ``group`` committed per partition, and the end of what was produced there."""
    ends: dict[TopicPartition, int] = {}
    for event_id in ids:
        topic, partition, offset = event_id.rsplit("/", 2)
        tp = TopicPartition(topic, int(partition))
        ends[tp] = max(ends.get(tp, 0), int(offset) + 1)
    return await committed(brokers, group, ends), ends


@pytest.fixture
def event() -> str:
    return f"telemetry-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bus(redis_broker, event):
    topic = BusTopic(redis_broker.address, event)
    yield topic
    topic.close()


def run_args(tmp_path: Path, redis_address: str, event: str, brokers: str, topic: str):
    """Arguments of ``fnevents run`` with the manifests written into ``tmp_path``."""
    spec = {"brokers": brokers, "topic": topic, "authRequired": False}
    # Tansu answers a join after half the session timeout, and a killed process stays
    # a member until its session expires: keep it short
    spec |= {"sessionTimeout": "2s", "initialOffset": "oldest"}
    path = tmp_path / "app.yaml"
    path.write_text(
        documents.bus("pubsub.redis", redisHost=redis_address)
        + documents.eventsource("vehicles", "kafka", {event: spec})
    )
    return ["run", "-f", str(path), "--port", "0"]


def test_kill_9_mid_stream_loses_nothing(tmp_path, kafka_broker, redis_broker, event, bus) -> None:
    topic = f"faults-{uuid.uuid4().hex[:10]}"
    run = run_args(tmp_path, redis_broker.address, event, kafka_broker.address, topic)
    log = tmp_path / "fnevents.log"
    expected = produce(kafka_broker.address, topic, 0, 1000)
    source = processes.start(run, log)
    try:
        wait_until(
            lambda: bus.count() >= 100,
            "the source is emitting",
            ARRIVAL_TIMEOUT,
            lambda: output(log),
        )
        source.kill()
        source.wait(10)
        before_kill = collections.Counter(bus.ids())
        assert len(before_kill) < len(expected), "the kill came after the stream had ended"
        expected |= produce(kafka_broker.address, topic, 1000, 2000)  # while it is down
        source = processes.start(run, log)
        wait_until(
            lambda: expected <= set(bus.ids()),
            "every record is on the bus",
            ARRIVAL_TIMEOUT,
            lambda: output(log),
        )
        assert processes.stop(source, 30) == 0, output(log)
    finally:
        processes.stop(source, 30)
    seen = collections.Counter(bus.ids())
    assert set(seen) == expected, "nothing lost, and nothing that was not produced"
    committed, ends = asyncio.run(
        committed_and_ends(kafka_broker.address, f"default-esc-kafka-{event}", expected)
    )
    assert committed == ends, "a clean stop commits everything emitted"
    replayed = sum(n - 1 for event_id, n in seen.items() if event_id in before_kill)
    others = sum(n - 1 for event_id, n in seen.items() if event_id not in before_kill)
    print(
        f"kill -9 after {sum(before_kill.values())} of {len(expected)} events: "
        f"{replayed} of them came again after the restart (emitted, not yet committed), "
        f"{others} other duplicates (a rebalance while rejoining), none lost"
    )


def test_a_broker_restart_mid_stream_loses_nothing(tmp_path, redis_broker, event, bus) -> None:
    """Ten batches, each produced once the previous one is on the bus; the broker restarts
    right after the sixth is produced, while the source is fetching it. The producer and
    the source both have to come back for the last five to arrive."""
    topic = f"faults-{uuid.uuid4().hex[:10]}"
    batch = 200
    with servers.durable_kafka() as tansu:
        run = run_args(tmp_path, redis_broker.address, event, tansu.address, topic)
        log = tmp_path / "fnevents.log"
        source = processes.start(run, log)
        expected: set[str] = set()
        try:
            for k in range(10):
                expected |= produce(tansu.address, topic, k * batch, (k + 1) * batch)
                if k == 5:
                    before_restart = bus.count()
                    tansu.restart()
                wanted = frozenset(expected)
                wait_until(
                    lambda w=wanted: w <= set(bus.ids()),
                    f"batch {k} is on the bus",
                    ARRIVAL_TIMEOUT,
                    lambda: output(log),
                )
            assert processes.stop(source, 30) == 0, output(log)
            committed, ends = asyncio.run(
                committed_and_ends(tansu.address, f"default-esc-kafka-{event}", expected)
            )
        finally:
            processes.stop(source, 30)
    assert committed == ends, "commits resumed after the restart"
    seen = collections.Counter(bus.ids())
    duplicates = sum(n - 1 for n in seen.values())
    assert set(seen) == expected, "nothing lost, and nothing that was not produced"
    assert len(expected) == 10 * batch
    print(
        f"broker restart with {before_restart} of {len(expected)} events on the bus: "
        f"{duplicates} duplicates, none lost"
    )
