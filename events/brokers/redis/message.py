"""The pieces a Redis Streams group member is made of: its commands and its messages.

:class:`GroupCommands` is every command a member sends for one (topic, group),
each bounded by ``readTimeout`` with one timer per command (the shared client
has no per-reply socket timeout: redis-py would arm a timer for every reply of
a pipeline). :class:`RedisMessage` turns a stream entry into a delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from redis import exceptions as rx

from events.bus import envelope
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from events.brokers.redis.member import RedisSubscription

#: Redis errors that mean "the broker is not there (right now)"; TimeoutError is an OSError.
UNREACHABLE = (rx.ConnectionError, rx.TimeoutError, OSError)

Entry = tuple[bytes, dict[bytes, bytes], int]  # (entry id, fields, attempt)
T = TypeVar("T")


async def bounded(command: Awaitable[T], seconds: float) -> T:
    """``command``'s reply, or TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        return await command


class GroupCommands:
    """The commands one member sends for its topic and group (not the blocking read)."""

    def __init__(self, client: Redis, topic: str, group: str, consumer: str, timeout: float):
        self.client, self.topic, self.group, self.consumer = client, topic, group, consumer
        self.timeout = timeout

    async def create_group(self) -> None:
        """XGROUP CREATE topic group 0 MKSTREAM; an existing group (BUSYGROUP) is fine."""
        try:
            await bounded(
                self.client.xgroup_create(self.topic, self.group, "0", mkstream=True),
                self.timeout,
            )
        except rx.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def ack(self, ids: list[bytes]) -> None:
        await bounded(self.client.xack(self.topic, self.group, *ids), self.timeout)

    async def pending(self, idle_ms: int, count: int) -> dict[bytes, int]:
        """Entries pending with any member for at least ``idle_ms``: id -> delivery count."""
        pending = await bounded(
            self.client.xpending_range(self.topic, self.group, "-", "+", count, idle=idle_ms),
            self.timeout,
        )
        return {p["message_id"]: p["times_delivered"] for p in pending}

    async def claim(self, ids: list[bytes], min_idle_ms: int) -> list[tuple[Any, Any]]:
        """XCLAIM to this member (counts a delivery). Redis 6.2 answers (None, None) in
        place of an entry the stream no longer has; Redis 7 leaves it out."""
        return await bounded(
            self.client.xclaim(self.topic, self.group, self.consumer, min_idle_ms, ids),
            self.timeout,
        )

    async def make_idle(self, ids: list[bytes], idle_ms: int) -> None:
        """Mark entries idle for ``idle_ms`` without counting a delivery (XCLAIM IDLE JUSTID)."""
        command = self.client.xclaim(
            self.topic, self.group, self.consumer, 0, ids, idle=idle_ms, justid=True
        )
        await bounded(command, self.timeout)

    async def leave(self) -> None:
        """Remove this member's name from the group, if nothing is pending with it
        (XGROUP DELCONSUMER would drop its pending entries), so member names that
        come and go do not pile up in the group."""
        pending = self.client.xpending_range(
            self.topic, self.group, "-", "+", 1, consumername=self.consumer
        )
        if not await bounded(pending, self.timeout):
            consumer = self.client.xgroup_delconsumer(self.topic, self.group, self.consumer)
            await bounded(consumer, self.timeout)

    async def unblock(self, client_id: int) -> None:
        await bounded(self.client.client_unblock(client_id), self.timeout)


class RedisMessage(Message):
    __slots__ = ("_entry_id", "_member")

    def __init__(self, member: RedisSubscription, entry: Entry) -> None:
        entry_id, fields, attempt = entry
        topic = member.topic
        event, key = decode(fields, topic, member.pubsub_name, f"{topic}/{entry_id.decode()}")
        super().__init__(topic, event, key, attempt)
        self._entry_id = entry_id
        self._member = member

    async def ack(self) -> None:
        member = self._member
        if member.queue_ack(self._entry_id):
            await member._flush()

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
