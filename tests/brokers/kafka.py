"""What a Kafka broker holds, read from outside with a plain aiokafka client."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition


async def committed(
    address: str, group: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """What ``group`` committed for each of ``partitions``, read without joining the group
    (Tansu has no list_consumer_group_offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=address, group_id=group)
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()


async def committed_offset(address: str, group: str, topic: str, partition: int) -> int | None:
    """What ``group`` committed for one partition of ``topic``."""
    tp = TopicPartition(topic, partition)
    return (await committed(address, group, [tp]))[tp]
