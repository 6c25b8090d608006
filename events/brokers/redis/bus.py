"""``pubsub.redis``: Redis Streams, on the wire exactly as Dapr's component.

Publish: ``XADD <topic> [MAXLEN ~ maxLenApprox | MINID ~ now-streamTTL] * data
<Dapr envelope> [metadata {"partitionKey": key}]``. Concurrent ``publish`` calls
are coalesced: while one pipeline of XADDs is on the wire, new calls queue, and
the next pipeline carries all of them (up to ``PUBLISH_BATCH``). Each call still
returns only once the broker has answered its own XADD, so "publish returned"
keeps meaning "the broker holds it"; a lone publisher pays one round trip as
before, many concurrent ones share round trips. The connection, this publisher
and the commands of a group member are in ``events.brokers.redis.client``.

Subscribe: the consumer group is the ``group`` argument (created with
``XGROUP CREATE <topic> <group> 0 MKSTREAM`` before ``subscribe`` returns; a new
group starts at the beginning of the stream); each subscription is one member
named ``<consumerID or 'fnevents'>-<random>``. Reading, redelivery and acks are
described in ``events.brokers.redis.member``. What a member closed on a lost broker
could not settle (acks, entries read ahead) is kept per (topic, group) and settled by
the next member of that group on this bus when it opens.

Backlog (the optional :class:`events.bus.backlog.Backlog` capability): XINFO GROUPS'
``lag`` plus ``pending`` (see ``RedisClient.backlog``).

Limits: one Redis node (no Cluster, no Sentinel); no ordering across the members
of a group (a stream is one log, but members take entries concurrently and a
claimed-back entry comes after later ones). Reconnecting is the core's job: an
unreachable broker is a ``BusError(retriable=True)`` from start, publish or the
subscription's iteration.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, ClassVar

import orjson

from events.brokers.redis import resp
from events.brokers.redis.client import RedisClient, RedisPublisher
from events.brokers.redis.member import BLOCK_MS, Leftovers, RedisMember
from events.brokers.redis.settings import RedisSettings
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed

__all__ = ["RedisBus", "RedisSettings"]


class RedisBus(EventBus):
    """Redis Streams as the event bus. Safe for concurrent use from one event loop."""

    component_type: ClassVar[str] = "pubsub.redis"

    def __init__(self, settings: RedisSettings, pubsub_name: str = "eventbus") -> None:
        self.settings = settings
        self.pubsub_name = pubsub_name
        self._client = RedisClient(settings)
        self._publisher = RedisPublisher(self._client.redis, settings)
        self._subscriptions: list[RedisMember] = []
        #: per (topic, group): what members closed on a lost broker could not settle
        self._leftovers: dict[tuple[str, str], Leftovers] = {}
        self._closed = False

    async def start(self) -> None:
        await self._client.start()

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        if self._closed:
            raise BusClosed("the Redis bus is closed; cannot publish")
        command: list[Any] = ["XADD", topic]
        if self.settings.maxLenApprox:  # as in Dapr, MAXLEN wins when both are set
            command += ["MAXLEN", "~", self.settings.maxLenApprox]
        elif self.settings.streamTTL:
            oldest_ms = int((time.time() - self.settings.streamTTL) * 1000)
            command += ["MINID", "~", f"{oldest_ms}-1"]
        command += ["*", "data", envelope.encode(event, topic, self.pubsub_name)]
        if key is not None:
            command += ["metadata", orjson.dumps({"partitionKey": key})]
        await self._publisher.send(topic, resp.pack(command))

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed("the Redis bus is closed; cannot subscribe")
        member = f"{self.settings.consumerID or 'fnevents'}-{uuid.uuid4().hex[:12]}"
        commands = self._client.group(topic, group, member)
        # the member's own connection: its XREADGROUP blocks, so it must not hold a pooled one
        reader = self._client.blocking_connection(BLOCK_MS / 1000)
        leftovers = self._leftovers.setdefault((topic, group), Leftovers())
        subscription = await RedisMember(
            commands, reader, self.settings, self.pubsub_name, leftovers
        ).open()
        self._subscriptions = [s for s in self._subscriptions if not s.closed]
        self._subscriptions.append(subscription)
        return subscription

    async def backlog(self, topic: str, group: str) -> int | None:
        """What waits for ``group`` on ``topic`` (see ``RedisClient.backlog``)."""
        return await self._client.backlog(topic, group)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))
        await self._publisher.drain()
        await self._client.close()

    def describe(self) -> str:
        return f"Redis Streams at {self.settings.address}"
