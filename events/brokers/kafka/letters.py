"""Dead letters on Kafka: read from the group's committed offsets, committing nothing.

:data:`REPLAY_GROUP`'s place on a topic is its committed offset per partition (the
oldest offset while it has none). ``browse`` assigns itself every partition, starts
there and reads until a fetch brings nothing for ``IDLE`` seconds, or for ``CONFIRM``
seconds once the reported end offsets are reached: those are only a hint, since
Tansu 0.6 reports them wrongly after multi-record batches.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from events.brokers.kafka.bus import KafkaBus
from events.brokers.kafka.client import CLIENT_ERRORS, bus_error, client_options, group_id
from events.brokers.kafka.message import decode_record
from events.brokers.kafka.settings import KafkaSettings, broker_list
from events.bus.contract import EventBus
from events.bus.letters import REPLAY_GROUP, Letter, LetterStore

#: A fetch that brings nothing for this long means the end of the topic was reached ...
IDLE = 2.0
#: ... or for this long, once every partition is at the end offset the broker reports.
CONFIRM = 0.3


class KafkaLetters(LetterStore):
    settings: KafkaSettings
    positional = True

    def replay_bus(self) -> EventBus:
        oldest = self.settings.model_copy(update={"initialOffset": "oldest"})
        return KafkaBus(oldest, pubsub_name=self.pubsub_name)

    async def browse(self, topic: str, limit: int | None = None) -> list[Letter]:
        where = f"Kafka at {','.join(broker_list(self.settings.brokers))}"
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            group_id=group_id(self.settings, REPLAY_GROUP, topic),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
            if topic not in await consumer.topics():
                return []
            await self._seek(consumer, topic)
            return await self._read(consumer, limit)
        except CLIENT_ERRORS as exc:
            raise bus_error(exc, f"cannot read {topic} on {where}") from exc
        finally:
            await consumer.stop()

    async def _seek(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        for tp in assigned:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    async def _read(self, consumer: AIOKafkaConsumer, limit: int | None) -> list[Letter]:
        records: list[Any] = []
        assigned = list(consumer.assignment())
        ends = await consumer.end_offsets(assigned)
        while limit is None or len(records) < limit:
            positions = [await consumer.position(tp) for tp in assigned]
            at_end = all(p >= ends[tp] for p, tp in zip(positions, assigned, strict=True))
            # at the reported end, a short fetch confirms it (a wrong end shows as records)
            batches = await consumer.getmany(timeout_ms=int((CONFIRM if at_end else IDLE) * 1000))
            if not batches:
                break
            for batch in batches.values():
                records += batch
        records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        return [self._letter(record) for record in records[:limit]]

    def _letter(self, record: Any) -> Letter:
        event = decode_record(record, pubsub_name=self.pubsub_name)
        return Letter(record.topic, f"{record.partition}/{record.offset}", event)
