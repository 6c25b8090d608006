"""A Redis stream entry as a delivery: :class:`RedisMessage` and :func:`decode`.

An entry is what a group member read: ``(entry id, fields, attempt)``. The member
that read it (``events.brokers.redis.member``) settles it; a message knows it only
as the small :class:`Member` protocol below.
"""

from __future__ import annotations

from typing import Protocol

import orjson

from events.bus import envelope
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent

Entry = tuple[bytes, dict[bytes, bytes], int]  # (entry id, fields, attempt)


class Member(Protocol):
    """What a message calls on the group member that handed it out."""

    @property
    def topic(self) -> str: ...

    @property
    def pubsub_name(self) -> str: ...

    def queue_ack(self, entry_id: bytes) -> bool: ...

    async def flush(self) -> bool: ...

    def nack(self, entry_id: bytes, attempt: int, delay: float) -> None: ...


class RedisMessage(Message):
    __slots__ = ("_entry_id", "_member")

    def __init__(self, member: Member, entry: Entry) -> None:
        entry_id, fields, attempt = entry
        topic = member.topic
        event, key = decode(fields, topic, member.pubsub_name, f"{topic}/{entry_id.decode()}")
        super().__init__(topic, event, key, attempt)
        self._entry_id = entry_id
        self._member = member

    async def ack(self) -> None:
        member = self._member
        if member.queue_ack(self._entry_id):
            await member.flush()

    async def nack(self, delay: float = 0.0) -> None:
        self._member.nack(self._entry_id, self.attempt, delay)


def decode(
    fields: dict[bytes, bytes], topic: str, pubsub_name: str, fallback_id: str
) -> tuple[CloudEvent, str | None]:
    """The event and key in a stream entry's fields (read by name, as Dapr writes them).

    Never raises: an entry that is not a valid event becomes an undecodable stand-in,
    which the core's bounded() wrapper dead-letters."""
    raw = fields.get(b"data")
    if raw is None:
        reason = "the stream entry has no 'data' field"
        return envelope.undecodable(b"", reason, topic=topic, fallback_id=fallback_id), None
    try:
        event = envelope.decode(raw, topic=topic, pubsub_name=pubsub_name, fallback_id=fallback_id)
    except InvalidCloudEvent as exc:
        event = envelope.undecodable(raw, exc, topic=topic, fallback_id=fallback_id)
    return event, _partition_key(fields.get(b"metadata"))


def _partition_key(raw: bytes | None) -> str | None:
    if not raw:
        return None
    try:
        metadata = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    key = metadata.get("partitionKey") if isinstance(metadata, dict) else None
    return key if isinstance(key, str) else None
