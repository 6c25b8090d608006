"""``pubsub.redis``: Redis Streams, on the wire exactly as Dapr's component.

Publish: ``XADD <topic> [MAXLEN ~ maxLenApprox | MINID ~ now-streamTTL] * data
<Dapr envelope> [metadata {"partitionKey": key}]``. Concurrent ``publish`` calls
are coalesced: while one pipeline of XADDs is on the wire, new calls queue, and
the next pipeline carries all of them (up to ``PUBLISH_BATCH``). Each call still
returns only once the broker has answered its own XADD, so "publish returned"
keeps meaning "the broker holds it"; a lone publisher pays one round trip as
before, many concurrent ones share round trips.

Subscribe: the consumer group is the ``group`` argument (created with
``XGROUP CREATE <topic> <group> 0 MKSTREAM`` before ``subscribe`` returns; a new
group starts at the beginning of the stream); each subscription is one member
named ``<consumerID or 'fnevents'>-<random>``. Reading, redelivery and acks are
described in ``events.brokers.redis.member``.

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
from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis.member import BLOCK_MS, RedisSubscription
from events.brokers.redis.message import UNREACHABLE, GroupCommands, bounded
from events.brokers.redis.settings import RedisSettings
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

__all__ = ["RedisBus", "RedisSettings"]

#: Most XADDs sent in one pipeline.
PUBLISH_BATCH = 500


class RedisBus(EventBus):
    """Redis Streams as the event bus. Safe for concurrent use from one event loop."""

    component_type: ClassVar[str] = "pubsub.redis"

    def __init__(self, settings: RedisSettings, pubsub_name: str = "eventbus") -> None:
        self.settings = settings
        self.pubsub_name = pubsub_name
        # no per-reply socket timeout: every command is bounded by readTimeout as a whole
        # (redis-py would arm one timer per reply, which is most of a pipeline's overhead)
        self._client = Redis(**settings.connection_options(None), max_connections=settings.poolSize)
        self._publisher = _Publisher(self._client, settings)
        self._subscriptions: list[RedisSubscription] = []
        self._closed = False

    async def start(self) -> None:
        try:
            await bounded(self._client.ping(), self.settings.readTimeout)
        except (rx.AuthenticationError, rx.AuthorizationError) as exc:
            raise BusError(
                f"Redis at {self.settings.address} refused the credentials: {exc}"
            ) from exc
        except UNREACHABLE as exc:
            detail = str(exc) or type(exc).__name__
            raise BusError(
                f"cannot reach Redis at {self.settings.address}: {detail}", retriable=True
            ) from exc

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
        await self._publisher.send(command)

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed("the Redis bus is closed; cannot subscribe")
        member = f"{self.settings.consumerID or 'fnevents'}-{uuid.uuid4().hex[:12]}"
        commands = GroupCommands(self._client, topic, group, member, self.settings.readTimeout)
        # the member's own connection: its XREADGROUP blocks, so it must not hold a pooled one
        reader = Redis(
            **self.settings.connection_options(self.settings.readTimeout + BLOCK_MS / 1000),
            single_connection_client=True,
        )
        subscription = await RedisSubscription(
            commands, reader, self.settings, self.pubsub_name
        ).open()
        self._subscriptions = [s for s in self._subscriptions if not s.closed]
        self._subscriptions.append(subscription)
        return subscription

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))
        await self._publisher.drain()
        await self._client.aclose()

    def describe(self) -> str:
        return f"Redis Streams at {self.settings.address}"


class _Publisher:
    """Coalesces concurrent XADDs into pipelines, one pipeline in flight at a time.

    A publish that finds nothing in flight is sent by its own task (no hop through
    the sender task); publishes that arrive meanwhile queue for the sender."""

    def __init__(self, client: Redis, settings: RedisSettings) -> None:
        self._client = client
        self._address = settings.address
        self._timeout = settings.readTimeout
        self._queue: list[tuple[list[Any], asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._direct = False  # a publish is being sent by its own task
        self._quiet = asyncio.Event()  # nothing in flight
        self._quiet.set()

    async def send(self, command: list[Any]) -> None:
        if self._sender is None and not self._direct:
            self._direct = True
            self._quiet.clear()
            try:
                await self._send_one(command)
            finally:
                self._direct = False
                if self._queue:
                    self._sender = asyncio.create_task(self._run(), name="redis publish")
                else:
                    self._quiet.set()
            return
        future = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        await future

    async def _send_one(self, command: list[Any]) -> None:
        try:
            await bounded(self._client.execute_command(*command), self._timeout)
        except UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except rx.RedisError as exc:
            raise BusError(f"Redis refused the publish to {command[1]}: {exc}") from exc

    def _unreachable(self, exc: BaseException) -> BusError:
        detail = str(exc) or type(exc).__name__
        return BusError(f"cannot reach Redis at {self._address}: {detail}", retriable=True)

    async def drain(self) -> None:
        """Wait until every publish already made has its answer."""
        await self._quiet.wait()

    async def _run(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:PUBLISH_BATCH]
                del self._queue[:PUBLISH_BATCH]
                await self._send(batch)
        finally:
            self._sender = None
            self._quiet.set()

    async def _send(self, batch: list[tuple[list[Any], asyncio.Future[None]]]) -> None:
        replies: list[Any] = []
        failure: BusError | None = None
        try:
            pipe = self._client.pipeline(transaction=False)
            for command, _ in batch:
                pipe.execute_command(*command)
            replies = await bounded(pipe.execute(raise_on_error=False), self._timeout)
        except UNREACHABLE as exc:
            failure = self._unreachable(exc)
        except rx.RedisError as exc:
            failure = BusError(f"Redis at {self._address} refused the publish: {exc}")
        finally:  # also on cancellation: no caller is left waiting forever
            for index, (command, future) in enumerate(batch):
                if future.done():
                    continue
                reply = replies[index] if index < len(replies) else None
                if isinstance(reply, Exception):
                    future.set_exception(
                        BusError(f"Redis refused the publish to {command[1]}: {reply}")
                    )
                elif failure is not None or index >= len(replies):
                    future.set_exception(failure or BusError("the publish was interrupted"))
                else:
                    future.set_result(None)
