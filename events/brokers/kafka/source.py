"""The transport side of the ``kafka`` source: one consumer-group member, read and committed.

:class:`KafkaReader` joins the source's Kafka consumer group as a member of the
``pubsub.kafka`` bus's own kind (:mod:`events.brokers.kafka.member`: reading ahead,
backpressure, rebalancing, committing), with the source's ``decode`` in place of the
bus's wire format. It hands out each record as a :class:`KafkaMessage` whose
``event`` is what ``decode`` made of the record; ``ack()`` it once that is on the bus
(or dead-lettered). Offsets are committed every ``commitInterval``, in each partition
only up to the first record not yet acked, so a crash replays at most that tail, with
the same records, and loses nothing.

Turning a record into a CloudEvent is the source's job (``sources.kafka``), not this
module's; so is the order in which messages are emitted and acked.

Joining or reading fails with a :class:`BusError` (retriable when the brokers are
unreachable) naming the group and the brokers, said the same way on every attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaConnectionError

from events.brokers.kafka.member import KafkaMember, join_group
from events.brokers.kafka.message import KafkaMessage
from events.brokers.kafka.settings import KafkaSettings
from events.errors import BusError


class KafkaReader:
    """One member of a source's consumer group: ``join``, iterate, ``close``."""

    def __init__(self, member: KafkaMember) -> None:
        self._member = member

    @classmethod
    async def join(
        cls, settings: KafkaSettings, group: str, topic: str, decode: Callable[[Any], Any]
    ) -> KafkaReader:
        """Join ``group`` reading ``topic``; return once the group has assigned this member
        partitions. ``decode`` makes each record's ``event`` and must not raise."""
        try:
            member = await join_group(settings, group, topic, "", decode)
        except BusError as exc:
            raise _steady(exc) from exc.__cause__
        return cls(member)

    def __aiter__(self) -> KafkaReader:
        return self

    async def __anext__(self) -> KafkaMessage:
        try:
            message = await anext(self._member)
        except BusError as exc:
            raise _steady(exc) from exc.__cause__
        assert isinstance(message, KafkaMessage)
        return message

    async def close(self) -> None:
        """Leave the group without waiting for unacked messages: what was acked is committed
        now, the rest is read again by whoever takes the partitions (this source once
        restarted, or another replica)."""
        await self._member.close(drain_timeout=0)


def _steady(exc: BusError) -> BusError:
    """``exc``, or, when no broker answered, the same error said the same way each time."""
    cause = exc.__cause__
    if not (isinstance(cause, KafkaConnectionError) and "Unable to bootstrap" in str(cause)):
        return exc
    # aiokafka lists the brokers in a random order: say it the same way every time,
    # so the runtime reports a lasting outage once instead of on every attempt
    message = str(exc).removesuffix(str(cause)) + "no broker answered"
    return BusError(message, retriable=exc.retriable)
