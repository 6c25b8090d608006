"""One member of a consumer group on a Redis stream (see ``events.brokers.redis.bus``);
its commands are ``events.brokers.redis.client``'s :class:`GroupCommands`.

Three loops serve a member, all on one asyncio loop, so the state needs no locks:

- the reader: ``XREADGROUP GROUP g <member> COUNT <room> BLOCK 1000 STREAMS topic >``
  on the member's own connection, into a local buffer of at most ``queueDepth``
  entries (bulk reads are the fast path);
- the claimer: at subscribe and then every ``redeliverInterval``, ``XPENDING ...
  IDLE <processingTimeout>`` and ``XCLAIM`` of what other (dead or stuck) members
  left pending, delivered with ``attempt`` = Redis's delivery count. (XPENDING +
  XCLAIM, as Dapr does, rather than XAUTOCLAIM: XAUTOCLAIM does not return
  delivery counts, and on Redis 6.2 it loses the ids of trimmed entries.);
- the ack flusher: ``ack()`` queues the entry id and returns; one ``XACK`` carries
  every id queued in the ``ACK_DELAY`` (5 ms) after the first, or goes at once when
  ``ACK_BATCH`` (500) are queued, so a busy member acks dozens to hundreds of
  entries per round trip.

Ack trade-off: ``ack()`` returning means "queued", not "on the broker". Until the
XACK lands (at most ACK_DELAY plus a round trip later) the entry is still pending
in Redis, but this member never hands it out again and another member can only
claim it after ``processingTimeout``. If the broker is lost before the XACK lands,
the entry is redelivered: a duplicate, never a loss. ``close()`` flushes every
queued ack before it returns; an ack after close is sent at once.

``close()`` also leaves the group (XGROUP DELCONSUMER) when nothing is pending with
the member, so per-subscription member names do not pile up in the group.

``nack(delay)``: after the delay the member XCLAIMs the entry to itself (which
counts the delivery in Redis, so a member taking over later sees the true count)
and hands it out again with ``attempt + 1``. Nothing is ever XACKed unless
``ack()`` was called (unlike Dapr since 1.17, components-contrib#4174), except
entries the stream no longer has (trimmed by ``maxLenApprox``): there is nothing
left to deliver, and Redis 7 drops those from the pending list itself.

``close()``: stop reading, wait up to ``drain_timeout`` for handed-out messages to
be settled, flush acks, then give every entry still held back to the group by
marking it idle for ``processingTimeout`` (XCLAIM IDLE JUSTID: still pending, not
acked, no delivery counted), so the next claim by any member takes it at once
instead of a processingTimeout later. A member that crashes cannot do this; its
entries are claimed once they have been idle for processingTimeout.

A lost broker: once the reader fails, nothing more is handed out, not even what was
read ahead (its ack could not land, and it would come back later: a duplicate per
entry read ahead); the iteration raises the retriable error at once. The core then
closes this member, and what the close cannot send to the lost broker (queued acks,
late acks, the entries to give back) goes to the bus's :class:`Leftovers` for this
(topic, group), which the next member settles when it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis.client import UNREACHABLE, GroupCommands, within
from events.brokers.redis.message import Entry, RedisMessage
from events.brokers.redis.settings import RedisSettings
from events.bus.contract import Message, Subscription
from events.errors import BusError

#: How long one XREADGROUP blocks; close() ends it at once with CLIENT UNBLOCK.
BLOCK_MS = 1000
#: An XACK goes out once this many acks are queued, or ACK_DELAY seconds after the first.
ACK_BATCH = 500
ACK_DELAY = 0.005


class RedisMember(Subscription):
    """A group member. Create it, then :meth:`open` (the group exists once that returns)."""

    def __init__(
        self,
        commands: GroupCommands,
        reader: Redis,
        settings: RedisSettings,
        pubsub_name: str,
        leftovers: Leftovers | None = None,
    ) -> None:
        self.topic, self.group = commands.topic, commands.group
        self.pubsub_name = pubsub_name
        self._redis = commands
        self._reader = reader  # this member's own connection, for the blocking read
        self._settings = settings
        self._timeout_ms = int(settings.processingTimeout * 1000)
        self._ready: deque[Entry] = deque()
        self._held: set[bytes] = set()  # read by this member, not yet settled on the broker
        self._handed_out: set[bytes] = set()
        self._acks: list[bytes] = []
        self._wake = asyncio.Event()  # something for __anext__: an entry, an error, close
        self._room = asyncio.Event()  # the buffer has room for the reader
        self._settled = asyncio.Event()
        self._settled.set()
        self._error: BusError | None = None
        self._closing = False
        self._stop = asyncio.Event()  # set when close() begins
        self._closed = asyncio.Event()  # set when close() is done
        self._reader_id = 0
        self._reading: asyncio.Task[None] | None = None
        self._claiming: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._nacks: set[asyncio.Task[None]] = set()
        #: What members of this (topic, group) could not settle on a lost broker.
        self._leftovers = leftovers or Leftovers()

    async def open(self) -> RedisMember:
        try:
            await self._redis.create_group()
            self._reader_id = await within(self._reader.client_id(), self._settings.readTimeout)
            await self._leftovers.settle(self._redis, self._timeout_ms)
        except rx.ResponseError as exc:
            await self._reader.aclose()
            raise BusError(f"cannot subscribe to {self.topic} on Redis: {exc}") from exc
        except UNREACHABLE as exc:
            await self._reader.aclose()
            raise self._lost(exc) from exc
        self._reading = self._spawn(self._read(), "read")
        if self._settings.processingTimeout > 0 and self._settings.redeliverInterval > 0:
            self._claiming = self._spawn(self._claim_loop(), "claim")
        return self

    @property
    def closed(self) -> bool:
        return self._closing

    def _spawn(self, coroutine, what: str) -> asyncio.Task[None]:
        return asyncio.create_task(coroutine, name=f"redis {what} {self.topic}/{self.group}")

    def _lost(self, exc: BaseException) -> BusError:
        detail = str(exc) or type(exc).__name__
        return BusError(
            f"Redis at {self._settings.address} is unreachable: {detail}", retriable=True
        )

    # -- handing out ----------------------------------------------------------------

    async def __anext__(self) -> Message:
        ready = self._ready
        if ready and not self._closing and self._error is None:  # take(1), without the list
            entry = ready.popleft()
            self._room.set()
            self._handed_out.add(entry[0])
            self._settled.clear()
            return RedisMessage(self, entry)
        return RedisMessage(self, (await self.take(1))[0])

    async def take(self, limit: int) -> list[Entry]:
        """The next ``limit`` or fewer entries (at least one) as they are in the stream,
        for a consumer that decodes entries itself (the Redis source); settle each with
        :meth:`ack`. Raises as ``__anext__`` does: StopAsyncIteration once closed, the
        reader's BusError once the broker is lost (at once: what was read ahead is not
        handed out any more, see the module docstring)."""
        while True:
            if self._closing:
                raise StopAsyncIteration
            if self._error is not None:  # what was read ahead is given back by close()
                raise self._error
            if self._ready:
                ready = self._ready
                entries = [ready.popleft() for _ in range(min(limit, len(ready)))]
                self._room.set()
                self._handed_out.update(entry[0] for entry in entries)
                self._settled.clear()
                return entries
            if self._error is not None:
                raise self._error
            self._wake.clear()
            await self._wake.wait()

    def _deliver(self, entries: list[Entry]) -> None:
        self._held.update(entry[0] for entry in entries)
        self._ready.extend(entries)
        self._wake.set()

    def _settle(self, entry_id: bytes) -> bool:
        if entry_id not in self._handed_out:
            return False
        self._handed_out.remove(entry_id)
        if not self._handed_out:
            self._settled.set()
        return True

    # -- the reader -----------------------------------------------------------------

    async def _read(self) -> None:
        depth, streams = self._settings.queueDepth, {self.topic: ">"}
        group, consumer = self.group, self._redis.consumer
        try:
            while not self._closing:
                room = depth - len(self._ready)
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                    continue
                reply = await self._reader.xreadgroup(
                    group, consumer, streams, count=room, block=BLOCK_MS
                )
                if reply:
                    self._deliver([(i, f, 1) for i, f in reply[0][1]])
                    # let the consumer take them before the next read is prepared
                    await asyncio.sleep(0)
        except UNREACHABLE as exc:
            self._fail(self._lost(exc))
        except rx.ResponseError as exc:
            if "NOGROUP" in str(exc):  # subscribing again recreates the group
                self._fail(
                    BusError(
                        f"the group {group} on {self.topic} is gone (the stream was deleted, "
                        f"or Redis restarted without persistence): {exc}",
                        retriable=True,
                    )
                )
            else:
                self._fail(BusError(f"cannot read {self.topic} from Redis: {exc}"))

    def _fail(self, error: BusError) -> None:
        if not self._closing:
            self._error = error
            self._wake.set()

    # -- redelivery of abandoned entries ---------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(*UNREACHABLE, rx.ResponseError):  # the reader reports
                await self.claim_abandoned()  # a lost broker or group
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._settings.redeliverInterval)

    async def claim_abandoned(self) -> int:
        """Claim entries pending with any member for >= processingTimeout; return how many."""
        counts = await self._redis.pending(
            self._timeout_ms, self._settings.queueDepth + len(self._held)
        )
        for entry_id in self._held.intersection(counts):  # ours and alive, only slow
            del counts[entry_id]
        if not counts or self._closing:
            return 0
        ids = list(counts)
        claimed = await self._redis.claim(ids, self._timeout_ms)
        entries = [(i, f, counts[i] + 1) for i, f in claimed if i is not None]
        if len(claimed) == len(ids):  # all claimed, so a None stands where a trimmed id was
            gone = [i for i, (c, _) in zip(ids, claimed, strict=True) if c is None]
            if gone:
                await self._redis.ack(gone)
        self._deliver(entries)
        return len(entries)

    # -- settling -------------------------------------------------------------------

    async def ack(self, entry_id: bytes) -> None:
        if self.queue_ack(entry_id):
            await self.flush()

    def queue_ack(self, entry_id: bytes) -> bool:
        """:meth:`ack` up to the XACK; True when the caller must ``await flush()`` now
        (an ack after close). Lets a message ack without a second coroutine."""
        if not self._settle(entry_id):
            return False
        self._acks.append(entry_id)
        if self._closed.is_set():  # a late ack after close: send it now
            return True
        if self._flusher is None:
            self._flusher = self._spawn(self._flush_soon(), "ack")
        return False

    async def _flush_soon(self) -> None:
        try:
            while self._acks:
                if len(self._acks) < ACK_BATCH and not self._closing:  # let more acks join
                    await asyncio.sleep(ACK_DELAY)
                if not await self.flush():
                    return  # the broker is away: close() or the next ack tries again
        finally:
            self._flusher = None

    async def flush(self) -> bool:
        """XACK everything queued; False (and the ids stay queued) if the broker is away.
        After close, what cannot be sent is left for the next member (``Leftovers``)."""
        while self._acks:
            batch, self._acks = self._acks, []
            try:
                await self._redis.ack(batch)
            except UNREACHABLE:
                if self._closed.is_set():
                    self._leftovers.acks.extend(batch)
                else:
                    self._acks[:0] = batch
                return False
            except rx.ResponseError:  # NOGROUP: the group is gone, and its entries with it
                pass
            self._held.difference_update(batch)
        return True

    def nack(self, entry_id: bytes, attempt: int, delay: float) -> None:
        if self._settle(entry_id) and not self._closing:  # closing gives it back anyway
            task = self._spawn(self._redeliver(entry_id, attempt, delay), "nack")
            self._nacks.add(task)
            task.add_done_callback(self._nacks.discard)

    async def _redeliver(self, entry_id: bytes, attempt: int, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            claimed = await self._redis.claim([entry_id], 0)
            if claimed and claimed[0][0] is None:  # trimmed from the stream meanwhile
                await self._redis.ack([entry_id])
        except (*UNREACHABLE, rx.ResponseError):
            claimed = []  # still pending on the broker (a claim finds it later), or gone
        if self._closing:
            return
        if claimed and claimed[0][0] is not None:
            self._ready.append((entry_id, claimed[0][1], attempt + 1))
            self._wake.set()
        else:
            self._held.discard(entry_id)

    # -- closing --------------------------------------------------------------------

    async def close(self, drain_timeout: float = 5.0) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._stop.set()
        self._wake.set()
        self._room.set()
        try:
            await self._stop_reading()
            if self._handed_out:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), drain_timeout)
            for task in self._nacks:  # entries waiting out a nack delay stay held
                task.cancel()
            # the claimer and the flusher finish the command they sent: cancelling it
            # would lose track of what it claimed or acked
            running = [t for t in (self._claiming, self._flusher, *self._nacks) if t]
            await asyncio.gather(*running, return_exceptions=True)
            given_back = False
            with contextlib.suppress(*UNREACHABLE, rx.ResponseError):  # one failure, not three
                if await self.flush():
                    await self._give_back()
                    given_back = True
            if not given_back:  # the broker is away: the next member settles them
                self._leftovers.keep(self._acks, self._held.difference(self._acks))
                self._acks = []
        finally:
            self._closed.set()
            await self._reader.aclose()

    async def _stop_reading(self) -> None:
        """End the blocking XREADGROUP now (CLIENT UNBLOCK makes it return empty)."""
        if self._reading is None or self._reading.done():
            return
        with contextlib.suppress(*UNREACHABLE, rx.ResponseError):
            await self._redis.unblock(self._reader_id)
        try:
            await asyncio.wait_for(asyncio.shield(self._reading), BLOCK_MS / 1000 + 0.5)
        except TimeoutError:
            self._reading.cancel()  # an unanswered read: its connection is closed below
            await asyncio.gather(self._reading, return_exceptions=True)

    async def _give_back(self) -> None:
        """Hand held entries to the group; a member left with none leaves the group."""
        held = list(self._held.difference(self._acks))
        if held and self._timeout_ms:
            await self._redis.make_idle(held, self._timeout_ms)
        elif not held:
            await self._redis.leave()


class Leftovers:
    """What closed members of one (topic, group) could not settle because the broker was
    away: acks to send, and entries to give back to the group. The bus keeps one per
    (topic, group), and the next member settles it when it opens: the acks land (so a
    message handled during the outage is not delivered again) and the entries are made
    claimable at once, instead of after ``processingTimeout``."""

    def __init__(self) -> None:
        self.acks: list[bytes] = []
        self.held: set[bytes] = set()

    def keep(self, acks: list[bytes], held: set[bytes]) -> None:
        self.acks.extend(acks)
        self.held |= held

    async def settle(self, commands: GroupCommands, idle_ms: int) -> None:
        """XACK the acks, mark the rest idle for ``idle_ms``; what fails stays kept."""
        acks, self.acks = self.acks, []
        try:
            if acks:
                await commands.ack(acks)
        except BaseException:
            self.acks[:0] = acks
            raise
        held, self.held = list(self.held.difference(acks)), set()
        try:
            if held and idle_ms:
                await commands.make_idle(held, idle_ms)
        except BaseException:
            self.held.update(held)
            raise
