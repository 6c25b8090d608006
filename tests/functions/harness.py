"""Running hosted functions for the tests: a Runtime from inline manifests and code,
and reading a Kafka topic back with a plain aiokafka consumer (no group)."""

from __future__ import annotations

import asyncio
import io
import textwrap
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.observability.console import Console

READ_TIMEOUT = 15.0


def function(name: str, target: str, extra: str = "") -> str:
    """A Function manifest running ``target`` from ``functions.py``; ``extra`` is more of
    its spec, as lines indented by two."""
    return f"""
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {{name: {name}}}
spec:
  source: functions.py
  target: {target}
{extra}"""


def kafka_binding(name: str, brokers: str, topic: str | None, **extra: str) -> str:
    """A ``bindings.kafka`` Component manifest."""
    metadata = {"brokers": brokers, **({"publishTopic": topic} if topic else {}), **extra}
    items = "".join(f"    - {{name: {k}, value: '{v}'}}\n" for k, v in metadata.items())
    return f"""
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: {name}}}
spec:
  type: bindings.kafka
  version: v1
  metadata:
{items}"""


def write_app(tmp_path: Path, code: str, *documents: str) -> Path:
    (tmp_path / "functions.py").write_text(textwrap.dedent(code))
    path = tmp_path / "app.yaml"
    path.write_text("---".join(documents))
    return path


async def start(path: Path, *components: str, output: io.StringIO | None = None) -> Runtime:
    """A started Runtime; what it prints goes to ``output``."""
    console = Console(stream=output or io.StringIO())
    runtime = Runtime(load_catalog([str(path)], list(components)), console)
    await runtime.start()
    return runtime


async def end_offset(brokers: str, topic: str) -> int:
    """How many records the topic's partitions hold in all (0 for a topic not yet created)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers)
    await consumer.start()
    try:
        partitions = await consumer._client.fetch_all_metadata()
        found = [TopicPartition(topic, p) for p in partitions.partitions_for_topic(topic) or ()]
        if not found:
            return 0
        return sum((await consumer.end_offsets(found)).values())
    finally:
        await consumer.stop()


async def read_records(brokers: str, topic: str, count: int) -> list[ConsumerRecord]:
    """The first ``count`` records of ``topic`` (every partition, from the start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=brokers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        consumer.assign([TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic)])
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(READ_TIMEOUT):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                records.extend(r for batch in batches.values() for r in batch)
        return records
    finally:
        await consumer.stop()
