"""One delivery of a Kafka record, and how a record becomes an event.

A message remembers its partition's :class:`PartitionOffsets` and its offset, so
its ack can move the commit position; settling goes through the subscription,
which owns the bookkeeping (see :mod:`events.brokers.kafka.member`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.bindings.kafka import from_record
from events.brokers.kafka.offsets import PartitionOffsets
from events.bus import envelope
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent

if TYPE_CHECKING:
    from events.brokers.kafka.member import KafkaSubscription


class KafkaMessage(Message):
    __slots__ = ("_offsets", "_settled", "_subscription", "offset", "partition")

    def __init__(
        self,
        topic: str,
        event: CloudEvent,
        key: str | None,
        attempt: int,
        subscription: KafkaSubscription,
        offsets: PartitionOffsets,
        partition: int,
        offset: int,
    ) -> None:
        super().__init__(topic, event, key, attempt)
        self._subscription = subscription
        self._offsets = offsets
        #: Where the record is (as Dapr's ``__partition`` and ``__offset`` metadata).
        self.partition = partition
        self.offset = offset
        self._settled = False

    async def ack(self) -> None:
        if not self._settled:
            self._settled = True
            self._subscription._acked(self)

    async def nack(self, delay: float = 0.0) -> None:
        if not self._settled:
            self._settled = True
            self._subscription._nacked(self, delay)


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
