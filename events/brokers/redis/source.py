"""The transport side of the ``redis`` EventSource (``sources.redis``): reading and acking.

Nothing here turns what Redis holds into CloudEvents: entries and messages are
handed out as Redis has them, and the source normalizes them.

- :class:`RedisStreamReader`: a member of the stream's consumer group, the
  ``pubsub.redis`` bus's own (``events.brokers.redis.member``: reads, claims of
  abandoned entries, batched acks), used on raw entries;
- :class:`RedisChannelReader`: Redis Pub/Sub, ``SUBSCRIBE``, or ``PSUBSCRIBE`` when
  the name has glob characters (``*``, ``?``, ``[``).

Failures are ``BusError``s: retriable when Redis is unreachable (the source is
restarted with backoff), not when it refuses the credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable

from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis.bus import RedisBus
from events.brokers.redis.client import UNREACHABLE, unreachable_error, within
from events.brokers.redis.member import RedisMember
from events.brokers.redis.message import Entry
from events.brokers.redis.settings import RedisConnection, RedisSettings
from events.errors import BusError

__all__ = ["Entry", "RedisChannelReader", "RedisStreamReader"]

#: Characters that make a channel name a pattern (PSUBSCRIBE).
GLOB = frozenset("*?[")


class RedisStreamReader:
    """Raw entries of ``stream`` for one member of ``group``, acked one by one.

    :meth:`open`, then :meth:`take` and :meth:`ack` each entry taken; :meth:`close`
    hands every entry still held back to the group at once (not a
    ``processingTimeout`` later) and closes the connections."""

    def __init__(self, settings: RedisSettings, stream: str, group: str, pubsub_name: str):
        self.settings = settings
        self.stream, self.group = stream, group
        self._bus = RedisBus(settings, pubsub_name=pubsub_name)
        self._member: RedisMember | None = None

    async def open(self) -> None:
        """Connect and join the group (created at the start of the stream if new)."""
        await self._bus.start()
        subscription = await self._bus.subscribe(self.stream, self.group)
        assert isinstance(subscription, RedisMember)
        self._member = subscription

    def take(self) -> Awaitable[list[Entry]]:
        """The next entries as they are in the stream (at least one, up to ``queueDepth``).
        Raises BusError once the broker or the group is lost."""
        member = self._member
        assert member is not None, "open() first"
        return member.take(self.settings.queueDepth)  # the member's own coroutine, no hop

    async def ack(self, entry_id: bytes) -> None:
        """XACK ``entry_id`` (batched with others by the member)."""
        member = self._member
        assert member is not None, "open() first"
        if member.queue_ack(entry_id):  # as RedisMember.ack, without a second coroutine
            await member.flush()

    async def close(self) -> None:
        if self._member is not None:  # hand held entries back now, not a processingTimeout later
            await self._member.close(drain_timeout=0)
        await self._bus.close()


class RedisChannelReader:
    """Messages published to ``channel`` (or to the channels it matches, if a pattern).

    :meth:`open`, then :meth:`receive` each message; :meth:`close`. At most once:
    Redis keeps nothing for a subscriber that is not connected."""

    def __init__(self, settings: RedisConnection, channel: str) -> None:
        self.settings = settings
        self.channel = channel
        self._client = Redis(**settings.connection_options(None), socket_keepalive=True)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)

    async def open(self) -> None:
        """SUBSCRIBE, or PSUBSCRIBE when the name has glob characters."""
        pubsub, address = self._pubsub, self.settings.address
        subscribe = pubsub.psubscribe if GLOB.intersection(self.channel) else pubsub.subscribe
        try:
            await within(subscribe(self.channel), self.settings.readTimeout)
        except (rx.AuthenticationError, rx.AuthorizationError) as exc:
            raise BusError(f"Redis at {address} refused the credentials: {exc}") from exc
        except UNREACHABLE as exc:
            raise unreachable_error(address, exc) from exc

    async def receive(self) -> tuple[str, bytes]:
        """The next message: the name of the channel it was published to, and its payload."""
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except UNREACHABLE as exc:
                raise unreachable_error(self.settings.address, exc) from exc
            if message is not None and message["type"] in ("message", "pmessage"):
                return message["channel"].decode("utf-8", "replace"), message["data"]

    async def close(self) -> None:
        await self._pubsub.aclose()
        await self._client.aclose()
