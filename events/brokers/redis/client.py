"""The connection to Redis of a :class:`~events.brokers.redis.bus.RedisBus`.

:class:`RedisClient` owns the pooled redis-py client: its options, the PING at
start (refused credentials and an unreachable broker become specific
``BusError``s), the connections of its own a blocking read needs, and close.

:class:`RedisPublisher` coalesces concurrent XADDs into pipelines;
:class:`GroupCommands` is every command a group member sends for one (topic,
group). Each command is bounded by ``readTimeout`` as a whole with :func:`within`,
one timer per command: the pooled client has no per-reply socket timeout, because
redis-py would arm a timer for every reply of a pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis import resp
from events.brokers.redis.settings import RedisSettings
from events.errors import BusError

#: Redis errors that mean "the broker is not there (right now)"; TimeoutError is an OSError.
UNREACHABLE = (rx.ConnectionError, rx.TimeoutError, OSError)
#: Most XADDs sent in one pipeline.
PUBLISH_BATCH = 500

T = TypeVar("T")


async def within(command: Awaitable[T], seconds: float) -> T:
    """``command``'s reply, or TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        return await command


def unreachable_error(address: str, exc: BaseException) -> BusError:
    """The retriable error for a Redis at ``address`` that did not answer."""
    detail = str(exc) or type(exc).__name__
    return BusError(f"cannot reach Redis at {address}: {detail}", retriable=True)


class RedisClient:
    """The pooled redis-py client one bus shares for every command but blocking reads."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        # no per-reply socket timeout: every command is bounded by readTimeout as a whole
        # (redis-py would arm one timer per reply, which is most of a pipeline's overhead)
        self.redis = Redis(**settings.connection_options(None), max_connections=settings.poolSize)

    async def start(self) -> None:
        """One PING, so a wrong address or password shows at start."""
        try:
            await within(self.redis.ping(), self.settings.readTimeout)
        except (rx.AuthenticationError, rx.AuthorizationError) as exc:
            raise BusError(
                f"Redis at {self.settings.address} refused the credentials: {exc}"
            ) from exc
        except UNREACHABLE as exc:
            raise unreachable_error(self.settings.address, exc) from exc

    def group(self, topic: str, group: str, consumer: str) -> GroupCommands:
        """The commands of member ``consumer`` of ``group`` on ``topic``, on the pool."""
        return GroupCommands(self.redis, topic, group, consumer, self.settings.readTimeout)

    def blocking_connection(self, block_seconds: float) -> Redis:
        """A connection of its own for a command that blocks up to ``block_seconds``
        (XREADGROUP BLOCK): a blocked command must not hold a pooled connection."""
        settings = self.settings
        return Redis(
            **settings.connection_options(settings.readTimeout + block_seconds),
            single_connection_client=True,
        )

    async def backlog(self, topic: str, group: str) -> int | None:
        """XINFO GROUPS: the group's ``lag`` plus ``pending``; None for a stream or group
        that does not exist. Redis 6.2 reports no ``lag``: one XRANGE then says whether
        anything is unread, which counts as 1 (a lower bound, enough to tell idle from
        stuck)."""
        timeout = self.settings.readTimeout
        try:
            groups = await within(self.redis.xinfo_groups(topic), timeout)
            found = next((g for g in groups if g["name"] in (group, group.encode())), None)
            if found is None:
                return None
            lag = found.get("lag")
            if lag is None:
                after = b"(" + found["last-delivered-id"]
                lag = len(await within(self.redis.xrange(topic, after, "+", count=1), timeout))
        except rx.ResponseError as exc:
            if "no such key" in str(exc):
                return None
            raise BusError(f"Redis at {self.settings.address} refused XINFO GROUPS: {exc}") from exc
        except UNREACHABLE as exc:
            raise unreachable_error(self.settings.address, exc) from exc
        return int(found["pending"]) + int(lag)

    async def close(self) -> None:
        await self.redis.aclose()


class RedisPublisher:
    """Coalesces concurrent XADDs into pipelines, one pipeline in flight at a time.

    A publish that finds nothing in flight is sent by its own task (no hop through
    the sender task); publishes that arrive meanwhile queue for the sender. Each XADD
    comes packed (``resp.pack``), so a pipeline is one join and one write."""

    def __init__(self, client: Redis, settings: RedisSettings) -> None:
        self._client = client
        self._address = settings.address
        self._timeout = settings.readTimeout
        self._queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._direct = False  # a publish is being sent by its own task
        self._quiet = asyncio.Event()  # nothing in flight
        self._quiet.set()

    async def send(self, topic: str, xadd: bytes) -> None:
        """Send ``xadd``, one packed XADD to ``topic``; return once Redis answered it."""
        if self._sender is None and not self._direct:
            self._direct = True
            self._quiet.clear()
            try:
                await self._send_one(topic, xadd)
            finally:
                self._direct = False
                if self._queue:
                    self._sender = asyncio.create_task(self._run(), name="redis publish")
                else:
                    self._quiet.set()
            return
        future = asyncio.get_running_loop().create_future()
        self._queue.append((topic, xadd, future))
        await future

    async def _send_one(self, topic: str, xadd: bytes) -> None:
        try:
            (reply,) = await within(resp.execute(self._client, xadd, 1), self._timeout)
        except UNREACHABLE as exc:
            raise unreachable_error(self._address, exc) from exc
        except rx.RedisError as exc:
            raise BusError(f"Redis refused the publish to {topic}: {exc}") from exc
        if isinstance(reply, rx.ResponseError):
            raise BusError(f"Redis refused the publish to {topic}: {reply}") from reply

    async def drain(self) -> None:
        """Wait until every publish already made has its answer."""
        await self._quiet.wait()

    async def _run(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:PUBLISH_BATCH]
                del self._queue[:PUBLISH_BATCH]
                await self._send(batch)
                # the publishers just answered publish again in the next loop pass: let
                # them queue first, or the next pipeline would leave with only the XADDs
                # queued so far and the rest wait a round trip more
                await asyncio.sleep(0)
        finally:
            self._sender = None
            self._quiet.set()

    async def _send(self, batch: list[tuple[str, bytes, asyncio.Future[None]]]) -> None:
        replies: list[Any] = []
        failure: BusError | None = None
        try:
            packed = b"".join([xadd for _, xadd, _ in batch])
            replies = await within(resp.execute(self._client, packed, len(batch)), self._timeout)
        except UNREACHABLE as exc:
            failure = unreachable_error(self._address, exc)
        except rx.RedisError as exc:
            failure = BusError(f"Redis at {self._address} refused the publish: {exc}")
        finally:  # also on cancellation: no caller is left waiting forever
            for index, (topic, _, future) in enumerate(batch):
                if future.done():
                    continue
                reply = replies[index] if index < len(replies) else None
                if isinstance(reply, Exception):
                    future.set_exception(BusError(f"Redis refused the publish to {topic}: {reply}"))
                elif failure is not None or index >= len(replies):
                    future.set_exception(failure or BusError("the publish was interrupted"))
                else:
                    future.set_result(None)


class GroupCommands:
    """The commands one member sends for its topic and group (not the blocking read)."""

    def __init__(self, client: Redis, topic: str, group: str, consumer: str, timeout: float):
        self.client, self.topic, self.group, self.consumer = client, topic, group, consumer
        self.timeout = timeout

    async def create_group(self) -> None:
        """XGROUP CREATE topic group 0 MKSTREAM; an existing group (BUSYGROUP) is fine."""
        try:
            await within(
                self.client.xgroup_create(self.topic, self.group, "0", mkstream=True),
                self.timeout,
            )
        except rx.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def ack(self, ids: list[bytes]) -> None:
        xack = resp.pack(["XACK", self.topic, self.group, *ids])  # hundreds of ids: by hand
        (reply,) = await within(resp.execute(self.client, xack, 1), self.timeout)
        if isinstance(reply, rx.ResponseError):
            raise reply

    async def pending(self, idle_ms: int, count: int) -> dict[bytes, int]:
        """Entries pending with any member for at least ``idle_ms``: id -> delivery count."""
        pending = await within(
            self.client.xpending_range(self.topic, self.group, "-", "+", count, idle=idle_ms),
            self.timeout,
        )
        return {p["message_id"]: p["times_delivered"] for p in pending}

    async def claim(self, ids: list[bytes], min_idle_ms: int) -> list[tuple[Any, Any]]:
        """XCLAIM to this member (counts a delivery). Redis 6.2 answers (None, None) in
        place of an entry the stream no longer has; Redis 7 leaves it out."""
        return await within(
            self.client.xclaim(self.topic, self.group, self.consumer, min_idle_ms, ids),
            self.timeout,
        )

    async def make_idle(self, ids: list[bytes], idle_ms: int) -> None:
        """Mark entries idle for ``idle_ms`` without counting a delivery (XCLAIM IDLE JUSTID)."""
        command = self.client.xclaim(
            self.topic, self.group, self.consumer, 0, ids, idle=idle_ms, justid=True
        )
        await within(command, self.timeout)

    async def leave(self) -> None:
        """Remove this member's name from the group, if nothing is pending with it
        (XGROUP DELCONSUMER would drop its pending entries), so member names that
        come and go do not pile up in the group."""
        pending = self.client.xpending_range(
            self.topic, self.group, "-", "+", 1, consumername=self.consumer
        )
        if not await within(pending, self.timeout):
            consumer = self.client.xgroup_delconsumer(self.topic, self.group, self.consumer)
            await within(consumer, self.timeout)

    async def unblock(self, client_id: int) -> None:
        await within(self.client.client_unblock(client_id), self.timeout)
