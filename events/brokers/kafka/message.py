"""One delivery of a Kafka record, and how a record becomes an event.

A message remembers its partition's :class:`PartitionOffsets` and its offset, so
its ack can move the commit position; settling goes through the member that
handed it out, which owns the bookkeeping (see :mod:`events.brokers.kafka.member`).
The message knows that member only as a :class:`Settler`.
"""

from __future__ import annotations

from typing import Protocol

from events.bindings.kafka import from_record
from events.brokers.kafka.offsets import PartitionOffsets
from events.bus import envelope
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent


class Settler(Protocol):
    """What a message needs of its member: to be told of its one settlement."""

    def acked(self, message: KafkaMessage) -> None: ...

    def nacked(self, message: KafkaMessage, delay: float) -> None: ...


class KafkaMessage(Message):
    __slots__ = ("_member", "_settled", "offset", "partition", "partition_offsets")

    def __init__(
        self,
        topic: str,
        event: CloudEvent,
        key: str | None,
        attempt: int,
        member: Settler,
        partition_offsets: PartitionOffsets,
        partition: int,
        offset: int,
    ) -> None:
        super().__init__(topic, event, key, attempt)
        self._member = member
        #: The bookkeeping of the record's partition, shared by its messages.
        self.partition_offsets = partition_offsets
        #: Where the record is (as Dapr's ``__partition`` and ``__offset`` metadata).
        self.partition = partition
        self.offset = offset
        self._settled = False

    async def ack(self) -> None:
        if not self._settled:
            self._settled = True
            self._member.acked(self)

    async def nack(self, delay: float = 0.0) -> None:
        if not self._settled:
            self._settled = True
            self._member.nacked(self, delay)


def decode_record(record, pubsub_name: str) -> CloudEvent:
    """The event in a record: Dapr's envelope (or any structured CloudEvent), CloudEvents
    binary mode (``ce_`` headers), or a plain payload wrapped as Dapr wraps it. Never
    raises: an invalid CloudEvent becomes an undecodable stand-in for the dead letter."""
    topic = record.topic
    fallback_id = f"{topic}/{record.partition}/{record.offset}"
    raw = record.value if record.value is not None else b""
    try:
        headers = record.headers
        if headers:
            for name, _ in headers:
                if name.lower() == "ce_specversion":
                    return from_record(record.key, record.value, headers)
        return envelope.decode(raw, topic=topic, pubsub_name=pubsub_name, fallback_id=fallback_id)
    except InvalidCloudEvent as exc:
        return envelope.undecodable(raw, exc, topic=topic, fallback_id=fallback_id)
    except Exception as exc:  # noqa: BLE001 - a payload must never stop its partition
        reason = f"{type(exc).__name__}: {exc}"
        return envelope.undecodable(raw, reason, topic=topic, fallback_id=fallback_id)
