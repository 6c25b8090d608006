"""A ScaledObject watches the group ``fnevents run`` really reads as.

For Redis, Kafka and NATS JetStream: render the manifests, start the Trigger's role as a
real process (``fnevents run --only trigger/default/NAME``, as its Deployment does), and
read from the broker the consumer group (Redis, Kafka) or durable consumer (JetStream) it
created. It must be the one the ScaledObject names, on the stream or topic it names.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e import processes
from tests.k8s.render_helper import render
from tests.manifests import documents

TIMEOUT = 30.0


def _app(directory: Path, bus: str) -> str:
    """A Trigger on ``bus`` reading a cron source's topic; returns the Trigger's name."""
    suffix = uuid.uuid4().hex[:8]
    trigger = f"t{suffix}"
    (directory / "app.yaml").write_text(
        bus
        + documents.hourly_source(f"clock{suffix}")
        + f"""\
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: {trigger}}}
spec:
  eventBus: default
  inputs:
    tick: {{eventSource: clock{suffix}, event: tick}}
  subscribers:
    - condition: tick
      topic: out-{suffix}
"""
    )
    return trigger


def _scaler(directory: Path, trigger: str) -> dict[str, str]:
    rendered = render("-f", directory)
    scaled = rendered.of_kind("ScaledObject")[f"fnevents-trigger-default-{trigger}"]
    (only,) = scaled["spec"]["triggers"]
    return only["metadata"]


def _run_role(directory: Path, trigger: str, read: Callable[[], Awaitable[set[str]]], want: str):
    """Start the role, wait until ``read()`` (names on the broker) holds ``want``."""
    log = directory / "run.log"
    process = processes.start(
        ["run", "-f", str(directory), "--only", f"trigger/default/{trigger}", "--port", "0"], log
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        found: set[str] = set()
        while time.monotonic() < deadline and want not in found:
            assert process.poll() is None, log.read_text()
            found = asyncio.run(read())
            time.sleep(0.2)
        return found
    finally:
        processes.stop(process)


@pytest.mark.redis
def test_redis_consumer_group(tmp_path: Path, redis_broker) -> None:
    import redis.asyncio as aioredis

    trigger = _app(tmp_path, documents.bus("pubsub.redis", redisHost=redis_broker.address))
    metadata = _scaler(tmp_path, trigger)
    assert metadata["address"] == redis_broker.address

    async def groups() -> set[str]:
        client = aioredis.Redis(host=redis_broker.host, port=redis_broker.port)
        try:
            if not await client.exists(metadata["stream"]):
                return set()
            return {g["name"].decode() for g in await client.xinfo_groups(metadata["stream"])}
        finally:
            await client.aclose()

    assert metadata["consumerGroup"] in _run_role(
        tmp_path, trigger, groups, metadata["consumerGroup"]
    )


@pytest.mark.jetstream
def test_jetstream_durable_consumer(tmp_path: Path, nats_broker) -> None:
    import nats
    from nats.js.errors import NotFoundError

    url = f"nats://{nats_broker.address}"
    trigger = _app(tmp_path, documents.bus("pubsub.jetstream", natsURL=url))
    metadata = _scaler(tmp_path, trigger)
    assert metadata["natsServerMonitoringEndpoint"] == f"{nats_broker.host}:8222"

    async def consumers() -> set[str]:
        connection = await nats.connect(url)
        try:
            jsm = connection.jsm()
            try:
                found = await jsm.consumers_info(metadata["stream"])
            except NotFoundError:
                return set()
            return {c.name for c in found}
        finally:
            await connection.close()

    assert metadata["consumer"] in _run_role(tmp_path, trigger, consumers, metadata["consumer"])


@pytest.mark.kafka
def test_kafka_consumer_group(tmp_path: Path, kafka_broker) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    bus = documents.bus(
        "pubsub.kafka",
        brokers=kafka_broker.address,
        authType="none",
        sessionTimeout="2s",
        heartbeatInterval="500ms",
    )
    trigger = _app(tmp_path, bus)
    metadata = _scaler(tmp_path, trigger)
    assert metadata["bootstrapServers"] == kafka_broker.address

    async def groups() -> set[str]:
        """Which of the ScaledObject's group and the bare Trigger group committed on the
        topic, after one more record there (Tansu lists no groups and cannot describe
        them, so the group is known by what it commits)."""
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.address)
        await producer.start()
        try:
            await producer.send_and_wait(metadata["topic"], b'{"n": 1}')
        finally:
            await producer.stop()
        found = set()
        for group in (metadata["consumerGroup"], f"default-{trigger}"):
            # a consumer of the group that never joins it, as fnevents' own backlog probe
            probe = AIOKafkaConsumer(bootstrap_servers=kafka_broker.address, group_id=group)
            await probe.start()
            try:
                if await probe.committed(TopicPartition(metadata["topic"], 0)) is not None:
                    found.add(group)
            finally:
                await probe.stop()
        return found

    group = metadata["consumerGroup"]
    assert _run_role(tmp_path, trigger, groups, group) == {group}
    assert group.endswith(f".{metadata['topic']}")
