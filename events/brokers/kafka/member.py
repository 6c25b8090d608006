"""One member of a Kafka consumer group: read ahead, hand out, track acks, commit.

:func:`join_group` creates the consumer and returns a :class:`KafkaMember` once the
group has assigned it partitions. A background task reads record batches
(``getmany``) into a FIFO that ``__anext__`` hands out from. Every record read is
outstanding in its partition's :class:`PartitionOffsets` until acked; a second task
commits, every ``commitInterval``, each partition's position below which everything
is acked. So a crash or a rebalance replays only the unacked tail: nothing is lost,
and nothing acked is replayed past the last commit.

``nack(delay)`` puts the same record back at the end of the FIFO after the
delay, with ``attempt + 1``, while later records of its partition keep flowing
(Dapr retries in place and stalls the partition; we don't). Its offset stays
outstanding, so the commit position waits for it: a crash redelivers it, never
loses it. Per-key order therefore holds for first deliveries only; a
redelivery arrives after records read later.

Backpressure: with ``maxPending`` offsets outstanding (or a full read-ahead), the
member stops reading; if that lasts (``STALL``), it pauses its partitions but keeps
polling, so it stays in the group.

A revoked partition's messages are dropped from the FIFO, and acks for them are
ignored: the new owner reads them again from the committed position. Likewise once
reading has failed (the member is about to be replaced) nothing more is handed out,
not even what was read ahead: it is not committed, so the next member reads it, and
handing it out now would only make duplicates (its acks could not be committed).

What a message carries as ``event`` is made from its record by ``decode``, when
the message is handed out: by default :func:`decode_record` (the bus's wire
format). The Kafka source (:mod:`events.brokers.kafka.source`) passes its own
normalization, so it can use this member on topics that other producers write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from events.brokers.kafka.client import CLIENT_ERRORS, bus_error, consumer_options
from events.brokers.kafka.message import KafkaMessage, decode_record
from events.brokers.kafka.offsets import PartitionOffsets
from events.brokers.kafka.settings import KafkaSettings, broker_list
from events.bus.contract import Message, Subscription
from events.errors import BusError

log = logging.getLogger(__name__)

READ_AHEAD = 2_000  # records read and not yet handed out before reading stops
BATCH = 500  # records taken from the client per poll
POLL_MS = 500  # how long one poll waits for records (close cancels it)
STALL = 1.0  # seconds without room to read into before a member pauses its partitions
JOIN_TIMEOUT = 60.0  # subscribe() gives up if the group has not assigned us by then
STOP_TIMEOUT = 10.0  # bound on the final commit and the client's stop during an outage


async def join_group(
    settings: KafkaSettings,
    name: str,
    topic: str,
    pubsub_name: str,
    decode: Callable[[Any], Any] | None = None,
) -> KafkaMember:
    """Join Kafka consumer group ``name`` reading ``topic``; return once partitions are
    assigned. Raises BusError (retriable if the broker is unreachable) naming the group
    and the brokers. ``decode`` is passed to :class:`KafkaMember`."""
    where = f"group {name} on Kafka at {','.join(broker_list(settings.brokers))}"
    consumer = AIOKafkaConsumer(**consumer_options(settings, name))
    member = KafkaMember(
        consumer,
        topic,
        pubsub_name,
        commit_interval=settings.commitInterval,
        max_pending=settings.maxPending,
        commit_on_assign=settings.initialOffset == "newest",
        where=where,
        decode=decode,
    )
    consumer.subscribe([topic], listener=member.rebalance)
    try:
        await consumer.start()
        await member.open()
    except BaseException as exc:
        await member.close(drain_timeout=0)
        if isinstance(exc, CLIENT_ERRORS):
            raise bus_error(exc, f"cannot join {where}") from exc
        raise
    return member


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, member: KafkaMember) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked) -> None:
        await self._member._revoke(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        await self._member._assign(assigned)


class KafkaMember(Subscription):
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        pubsub_name: str,
        *,
        commit_interval: float,
        max_pending: int,
        commit_on_assign: bool,
        where: str,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        self.topic = topic
        self._consumer = consumer
        self._pubsub_name = pubsub_name
        self._commit_interval = commit_interval
        self._max_pending = max_pending
        self._commit_on_assign = commit_on_assign
        self._where = where  # "group G on Kafka at H", for messages
        #: record -> the message's ``event``; None for the bus's decode_record (called
        #: directly in _message: a closure around it costs a call per record)
        self._decode = decode
        #: Fresh records as (record, offsets), redeliveries as messages, in hand-out order.
        self._ready: deque[tuple | KafkaMessage] = deque()
        self._partitions: dict[int, PartitionOffsets] = {}
        self._outstanding = 0  # offsets read and not yet committable, over all partitions
        self._handed_out = 0  # messages handed out and not yet settled
        self._wakeup = asyncio.Event()  # something to hand out, or closed, or failed
        self._space = asyncio.Event()  # outstanding or read-ahead went down
        self._joined = asyncio.Event()
        self._drained: asyncio.Event | None = None  # set up by close()
        self._timers: dict[KafkaMessage, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._error: BusError | None = None
        self._closed = False
        self.rebalance = _Rebalance(self)
        #: Called with this member once it has closed (the bus forgets it).
        self.on_close: Callable[[KafkaMember], None] | None = None

    async def open(self) -> None:
        """Start reading and committing; return once the group has assigned us partitions."""
        self._tasks = [
            asyncio.create_task(self._read(), name=f"kafka read {self.topic}"),
            asyncio.create_task(self._commit_periodically(), name=f"kafka commit {self.topic}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        waiter = asyncio.create_task(self._joined.wait())
        await asyncio.wait(
            [waiter, self._tasks[0]], timeout=JOIN_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        waiter.cancel()
        if self._error is not None:
            raise self._error
        if not self._joined.is_set():
            raise BusError(
                f"no partitions assigned within {JOIN_TIMEOUT:g}s in {self._where}", retriable=True
            )

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A background task must not die quietly: the reader would then wait forever."""
        if self._closed or task.cancelled():
            return
        exc = task.exception()
        if self._error is None:
            self._error = BusError(
                f"stopped {task.get_name()} in {self._where}: {exc!r}", retriable=True
            )
        self._wakeup.set()

    # -- handing out ---------------------------------------------------------------

    async def __anext__(self) -> Message:
        ready = self._ready
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:  # read ahead stays uncommitted: read again later
                raise self._error
            while ready:
                item = ready.popleft()
                if item.__class__ is tuple:  # a fresh record: decoded only now (see _take)
                    record, offsets = item
                    if offsets.revoked:
                        continue
                    message = self._message(record, offsets)
                else:
                    message = item  # a redelivery
                    if message.partition_offsets.revoked:
                        continue
                self._handed_out += 1
                self._space.set()
                return message
            self._wakeup.clear()
            await self._wakeup.wait()

    def acked(self, message: KafkaMessage) -> None:
        """``message`` was acked: its offset may be committed once those before it are."""
        self._settle_one()
        offsets = message.partition_offsets
        if not offsets.revoked:
            released = offsets.ack(message.offset)
            if released:
                self._outstanding -= released
                self._space.set()

    def nacked(self, message: KafkaMessage, delay: float) -> None:
        """``message`` was nacked: hand it out again after ``delay``, its offset outstanding."""
        self._settle_one()
        if message.partition_offsets.revoked or self._closed:
            return  # the offset was not committed: the group reads it again
        again = KafkaMessage(
            message.topic,
            message.event,
            message.key,
            message.attempt + 1,
            self,
            message.partition_offsets,
            message.partition,
            message.offset,
        )
        if delay > 0:
            self._timers[again] = asyncio.get_running_loop().call_later(
                delay, self._redeliver, again
            )
        else:
            self._redeliver(again)

    def _redeliver(self, message: KafkaMessage) -> None:
        self._timers.pop(message, None)
        if not self._closed and not message.partition_offsets.revoked:
            self._ready.append(message)
            self._wakeup.set()

    def _settle_one(self) -> None:
        self._handed_out -= 1
        if self._drained is not None and self._handed_out <= 0:
            self._drained.set()

    # -- reading -------------------------------------------------------------------

    def _full(self) -> bool:
        return len(self._ready) >= READ_AHEAD or self._outstanding >= self._max_pending

    async def _read(self) -> None:
        consumer = self._consumer
        paused = False
        try:
            while True:
                timeout_ms = POLL_MS
                if self._full() and not await self._room_within(STALL):
                    # pause, but keep polling: a member that stops polling leaves the group
                    consumer.pause(*consumer.assignment())
                    paused = True
                    timeout_ms = 0
                elif paused:
                    consumer.resume(*consumer.paused())
                    paused = False
                room = self._max_pending - self._outstanding  # never read past maxPending
                batches = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=max(1, min(BATCH, room))
                )
                if batches:
                    self._take(batches)
        except CLIENT_ERRORS as exc:
            self._error = bus_error(exc, f"lost {self._where} reading {self.topic}")
            self._wakeup.set()

    async def _room_within(self, seconds: float) -> bool:
        """Wait until there is room to read into; False if there is none after ``seconds``.

        Waiting does not pause the partitions: a poll on a paused partition drops the
        records the client has fetched ahead for it, and a paused partition is not
        fetched, so every refill would wait for the broker to read the records again.
        Only a member still full after ``seconds`` pauses, to poll and stay in the group."""
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while self._full():
                    self._space.clear()
                    await self._space.wait()
                return True
        return False

    def _take(self, batches) -> None:
        """Queue the records read. Decoding waits until a record is handed out, so a big
        batch does not hold the event loop (publishers, heartbeats) for its whole decode,
        and records dropped by a revoke or close are never decoded."""
        partitions, ready = self._partitions, self._ready
        for tp, records in batches.items():
            if not records:
                continue
            offsets = partitions.get(tp.partition)
            if offsets is None:
                offsets = partitions[tp.partition] = PartitionOffsets()
            offsets.read_all([record.offset for record in records])
            ready.extend(zip(records, repeat(offsets)))
            self._outstanding += len(records)
        self._wakeup.set()

    def _message(self, record, offsets: PartitionOffsets) -> KafkaMessage:
        key = record.key
        decode = self._decode
        return KafkaMessage(
            self.topic,
            decode_record(record, self._pubsub_name) if decode is None else decode(record),
            key.decode("utf-8", "replace") if key is not None else None,
            1,
            self,
            offsets,
            record.partition,
            record.offset,
        )

    # -- rebalancing and committing --------------------------------------------------

    async def _assign(self, assigned) -> None:
        for tp in assigned:
            self._partitions.setdefault(tp.partition, PartitionOffsets())
        try:
            if self._commit_on_assign:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self._pin_positions(assigned)
        except (TimeoutError, *CLIENT_ERRORS) as exc:
            log.warning("could not pin the start positions in %s: %s", self._where, exc)
        finally:
            self._joined.set()

    async def _pin_positions(self, assigned) -> None:
        """For initialOffset=newest: commit the end of each partition that has no committed
        offset yet, so a later owner starts there instead of at a later end."""
        consumer = self._consumer
        pins = {}
        for tp in assigned:
            if await consumer.committed(tp) is None:
                pins[tp] = await consumer.position(tp)
        if pins:
            await self._commit_offsets(pins)

    async def _revoke(self, revoked) -> None:
        commit = {}
        for tp in revoked:
            offsets = self._partitions.pop(tp.partition, None)
            if offsets is None:
                continue
            offsets.revoked = True
            self._outstanding -= offsets.outstanding
            position = offsets.to_commit()
            if position is not None:
                commit[tp] = position
        self._space.set()
        if commit:
            # bounded: the whole group waits for this member to finish revoking
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self._commit_offsets(commit)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._commit_interval)
            await self._commit_moved()

    async def _commit_moved(self) -> None:
        """Commit every partition's position that moved since its last commit."""
        commit, owners = {}, {}
        for partition, offsets in self._partitions.items():
            position = offsets.to_commit()
            if position is not None:
                tp = TopicPartition(self.topic, partition)
                commit[tp], owners[tp] = position, offsets
        if commit and await self._commit_offsets(commit):
            for tp, offsets in owners.items():
                offsets.committed = commit[tp]

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> bool:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # the group rebalanced under us: the new owners re-read from the last commit
            log.info("commit in %s skipped after a rebalance: %s", self._where, exc)
            return False
        except KafkaError as exc:
            log.warning("commit in %s failed, will retry: %s", self._where, exc)
            return False
        return True

    # -- closing ---------------------------------------------------------------------

    async def close(self, drain_timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.clear()  # read, not handed out, not committed: the group reads them again
        if self._handed_out > 0 and drain_timeout > 0:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await self._drained.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._commit_moved()
        for offsets in self._partitions.values():
            offsets.revoked = True  # late acks must not count: nothing commits them now
        with contextlib.suppress(TimeoutError, *CLIENT_ERRORS):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._consumer.stop()
        if self.on_close is not None:
            self.on_close(self)
