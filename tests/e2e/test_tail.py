"""``fnevents tail`` as a real subprocess: it prints only what is published after it
started (its group starts at the end), ``--json`` is one CloudEvent per line, and on
SIGTERM its consumer group is deleted, asserted from the broker itself."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from events.brokers.kafka.bus import KafkaBus
from events.brokers.kafka.settings import KafkaSettings
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from tests.e2e import processes
from tests.manifests import documents

pytestmark = pytest.mark.e2e


def app(directory: Path, bus_manifest: str) -> Path:
    path = directory / "bus.yaml"
    path.write_text(bus_manifest)
    return path


async def publish(bus: EventBus, topic: str, *ids: str) -> None:
    for event_id in ids:
        event = CloudEvent.create(
            type="dev.test.tail", source="/tail", id=event_id, data={"id": event_id}
        )
        await bus.publish(topic, event)


def tail(manifest: Path, topic: str, *extra: str):
    process = processes.piped("tail", "-f", str(manifest), "--topic", topic, *extra)
    lines = processes.read_until(process, r"tailing .* as new consumer group (\S+)", 60)
    group = lines[-1].split("as new consumer group ")[1].split()[0]
    return process, group


@pytest.mark.redis
async def test_tail_on_redis_prints_new_events_and_deletes_its_group(
    tmp_path: Path, redis_broker
) -> None:
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    manifest = app(tmp_path, documents.bus("pubsub.redis", redisHost=redis_broker.address))
    async with RedisBus(RedisSettings(redisHost=redis_broker.address)) as bus:
        await publish(bus, topic, "before")
        process, group = await asyncio.to_thread(tail, manifest, topic, "--json")
        client = Redis.from_url(f"redis://{redis_broker.address}")
        try:
            groups = {g["name"].decode() for g in await client.xinfo_groups(topic)}
            assert group in groups
            await publish(bus, topic, "after-1", "after-2")
            lines = await asyncio.to_thread(processes.read_until, process, "after-2", 30)
            events = [json.loads(line) for line in lines if line.startswith("{")]
            assert [e["id"] for e in events] == ["after-1", "after-2"]  # not "before"
            assert events[0]["type"] == "dev.test.tail" and events[0]["data"] == {"id": "after-1"}
            rest = await asyncio.to_thread(processes.finish, process)
            assert process.returncode == 0, rest
            assert f"deleted consumer group {group} on {topic}" in rest
            groups = {g["name"].decode() for g in await client.xinfo_groups(topic)}
            assert group not in groups
        finally:
            await client.aclose()
            if process.poll() is None:
                process.kill()


@pytest.mark.kafka
async def test_tail_on_kafka_deletes_its_group(tmp_path: Path, kafka_broker) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    topic = f"tail-{uuid.uuid4().hex[:8]}"
    manifest = app(tmp_path, documents.bus("pubsub.kafka", brokers=kafka_broker.address))
    async with KafkaBus(KafkaSettings(brokers=kafka_broker.address)) as bus:
        await publish(bus, topic, "before")
        process, group = await asyncio.to_thread(tail, manifest, topic)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.address)
        await admin.start()
        try:
            kafka_group = f"{group}.{topic}"
            listed = {g[0] for g in await admin.list_consumer_groups()}
            assert kafka_group in listed
            await publish(bus, topic, "after-1")
            lines = await asyncio.to_thread(processes.read_until, process, "after-1", 60)
            assert not any("id=before" in line for line in lines)
            assert any("type=dev.test.tail" in line for line in lines)
            rest = await asyncio.to_thread(processes.finish, process)
            assert process.returncode == 0, rest
            assert f"deleted consumer group {group} on {topic}" in rest
            listed = {g[0] for g in await admin.list_consumer_groups()}
            assert kafka_group not in listed
        finally:
            await admin.close()
            if process.poll() is None:
                process.kill()


async def test_tail_refuses_the_embedded_bus(tmp_path: Path) -> None:
    manifest = app(tmp_path, documents.bus())
    done = await processes.call(["tail", "-f", str(manifest), "--topic", "x"])
    assert done.status == 1
    assert "cannot tail" in done.err and "embedded in-memory bus" in done.err
