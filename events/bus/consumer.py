"""One consumer loop for everything that reads the bus: triggers and async functions.

It subscribes as a group (reconnecting through :class:`ResilientSubscription`,
dead-lettering poison through :func:`bounded`), runs ``handle`` for each
message with at most ``slots`` in flight (reading pauses while they are all
busy: backpressure to the bus), acks when ``handle`` returns and nacks with
backoff when it raises, saying so per event unless the error was already
reported once by the part that raised it (an unreachable condition store is).
When the last allowed delivery fails too, the event goes to the dead-letter
topic right away with that failure as its reason (rather than coming back once
more only to be dead-lettered with "gave up"). ``stop`` stops
reading, lets work in hand finish (up to the drain timeout) and returns the rest
to the bus unacked.

Inline (``inline=True``): the reader runs ``handle`` itself; a message whose handling
needs no I/O (a trigger publishing to the in-memory bus) is then settled with no
hand-over to a worker at all. The reader lets other tasks run every ``INLINE_BURST``
messages (or millisecond). A handler that does wait is finished by the reader, in the
task it started in, and the next ``INLINE_PAUSE`` messages go to workers before the
reader tries again: a started coroutine never moves to another task, because timeouts
(aiohttp's, ``asyncio.timeout``, redis-py's) cancel the task they were entered in, and
context variables belong to it. Reading waits meanwhile, so it is for handling that waits
on nothing outside the process (a trigger on the in-memory bus with no sink), and it is
off where handlers keep context variables across their waits (tracing spans).

Progress: with a :class:`~events.bus.stall.StallWatch`, the consumer registers
under ``label`` and marks its progress when it hands a message to ``handle`` and
when it settles one, so the watch can report it stalled (no progress while work
waits on the broker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from events.bus.contract import EventBus, Message
from events.bus.envelope import UNDECODABLE_TYPE
from events.bus.poison import bury, rejection
from events.bus.resilient import ResilientSubscription
from events.bus.stall import Progress, StallWatch
from events.errors import BusError, FnEventsError
from events.types import Report

Handle = Callable[[Message], Awaitable[None]]

MAX_NACK_DELAY = 30.0
#: Inline, the reader lets other tasks run after this many messages settled in a row, or
#: sooner once it has kept them waiting this long (the clock is read every 32 messages):
#: as long as a loop step of 64 workers took before, and not much longer for slow handlers.
INLINE_BURST = 256
INLINE_SECONDS = 0.001
#: After a handler that waited, this many messages go to workers before the reader runs
#: one itself again: one in that many then holds the reader up for its whole handling.
INLINE_PAUSE = 1024


def nack_delay(attempt: int) -> float:
    """0.5 s after the first failure, doubling, at most 30 s."""
    return min(0.5 * 2 ** (attempt - 1), MAX_NACK_DELAY)


class Consumer:
    def __init__(
        self,
        bus: EventBus,
        topic: str,
        group: str,
        handle: Handle,
        *,
        slots: asyncio.Semaphore,
        report: Report,
        max_deliveries: int,
        dead_letter_topic: str,
        watch: StallWatch | None = None,
        label: str = "",
        inline: bool = False,
    ) -> None:
        self.bus, self.topic, self.group = bus, topic, group
        self._handle, self._slots, self._report = handle, slots, report
        self._max_deliveries = max_deliveries
        self._dead_letter_topic = dead_letter_topic
        self._subscription: ResilientSubscription | None = None
        self._inline = inline
        self._paused = 0  # messages still to hand to workers before trying inline again
        self._burst = 0  # messages settled inline since the reader last let others run
        self._burst_start = 0.0  # when it last did
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: workers waiting for work, the most recently idle last
        self._idle: list[asyncio.Future[Awaitable[None]]] = []
        self._watch = watch
        self._label = label or f"consumer of {topic} (group {group})"
        #: When this consumer last moved; registered with ``watch`` once started.
        self.progress = Progress()

    async def start(self, on_message: Callable[[], None] | None = None) -> None:
        connection = ResilientSubscription(self.bus, self.topic, self.group, self._report)
        self._subscription = await connection.open()
        if self._watch is not None:
            self.progress = self._watch.watch(self._label, self.bus, self.topic, self.group)
        self._reader = asyncio.create_task(self._read(on_message), name=f"consume {self.topic}")

    async def _read(self, on_message: Callable[[], None] | None) -> None:
        """Read until closed. One loop for what :class:`ResilientSubscription` and
        :func:`events.bus.poison.bounded` do around each read: reconnect after a lost bus;
        dead-letter a message delivered too often or undecodable."""
        connection, slots, limit = self._subscription, self._slots, self._max_deliveries
        assert connection is not None
        current = connection.current
        try:
            while current is not None:  # once closed, it raises StopAsyncIteration too
                try:
                    message = await current.__anext__()
                except StopAsyncIteration:
                    return
                except BusError as exc:
                    await connection.recover(exc)
                    current = connection.current
                    continue
                if message.attempt > limit or message.event.type == UNDECODABLE_TYPE:
                    await self._reject(message)
                    continue
                if on_message is not None:
                    on_message()
                inline = self._inline and not self._paused
                if self._paused:
                    self._paused -= 1
                # a slot is free and nobody queues for one: what locked() says, minus a
                # generator per call; a waiter it counts too many only means the wait below
                if inline and slots._value and not slots._waiters:
                    await self._run_inline(message, holds_slot=False)
                    continue
                self.progress.moved()
                await slots.acquire()
                if inline:
                    await self._run_inline(message, holds_slot=True)
                else:
                    self._hand_over(self._settle(message))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - say why reading stopped, don't die silently
            self._report(f"stopped reading {self.topic}: {exc}")

    async def _reject(self, message: Message) -> None:
        reason = rejection(message, self._max_deliveries)
        assert reason is not None
        try:
            await bury(self.bus, self._dead_letter_topic, message, reason, message.attempt - 1)
        except Exception as exc:  # noqa: BLE001 - the reader must go on reading the rest
            await self._not_buried(message, exc)

    async def _not_buried(self, message: Message, exc: Exception) -> None:
        """The dead letter could not be written: say so, and let the bus hand it over again."""
        self._report(f"cannot dead-letter event {message.event.id}: {exc}")
        await message.nack(nack_delay(message.attempt))

    async def _run_inline(self, message: Message, holds_slot: bool) -> None:
        """Settle ``message`` in the reader's own task; now and then let others run.

        Handling that completes without waiting costs one coroutine and no task switch.
        Handling that waits is finished right here (see the module's docstring for why
        not in a worker), holding a slot meanwhile, and pauses inlining."""
        settle = self._settle(message)
        try:
            waiting = settle.send(None)
        except StopIteration:
            if holds_slot:
                self._slots.release()
            if self._settled_in_burst():
                await asyncio.sleep(0)  # let the rest of the process run
            return
        except asyncio.CancelledError:
            if holds_slot:
                self._slots.release()
            if self._stopping():
                raise
            await self._handler_cancelled(message)
            return
        self.progress.moved()  # handed to ``handle`` (settled inline, _settle says so)
        self._paused = INLINE_PAUSE
        if not holds_slot:
            _take_free(self._slots)
        try:
            await _Resumed(settle, waiting)
        except asyncio.CancelledError:
            if self._stopping():
                raise
            await self._handler_cancelled(message)
        finally:
            self._slots.release()

    @staticmethod
    def _stopping() -> bool:
        """Whether the reader itself is being cancelled (a stop), as opposed to a handler
        raising CancelledError of its own accord."""
        task = asyncio.current_task()
        return task is None or task.cancelling() > 0

    async def _handler_cancelled(self, message: Message) -> None:
        """A handler's own CancelledError must not end the reader: the event goes back
        to the bus, as after a failure."""
        delay = nack_delay(message.attempt)
        self._report(
            f"event {message.event.id} from {self.topic} failed (its handler raised "
            f"CancelledError); redelivering in {delay:g}s (delivery {message.attempt})"
        )
        await message.nack(delay)

    def _settled_in_burst(self) -> bool:
        """Count one more message settled inline; True when the reader should let other
        tasks run now."""
        self._burst += 1
        if self._burst & 31:
            return False
        now = time.monotonic()
        if self._burst < INLINE_BURST and now - self._burst_start < INLINE_SECONDS:
            return False
        self._burst, self._burst_start = 0, now
        return True

    def _hand_over(self, job: Awaitable[None]) -> None:
        """Give ``job`` to an idle worker, or to a new one (no task per message)."""
        if self._idle:
            self._idle.pop().set_result(job)
        else:
            task = asyncio.create_task(self._work(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _work(self, job: Awaitable[None]) -> None:
        """A worker: await ``job``, then wait for the next one the reader hands over.
        Workers are started as the reader needs them (at most one per slot, as a task per
        message was before) and kept until ``stop``: creating a task costs more than
        handling a message that needs no I/O."""
        loop, idle, slots = asyncio.get_running_loop(), self._idle, self._slots
        while True:
            try:
                await job
            finally:
                slots.release()
            waiter: asyncio.Future[Awaitable[None]] = loop.create_future()
            idle.append(waiter)
            job = await waiter

    async def _settle(self, message: Message) -> None:
        """Handle ``message``, then ack it; nack it, or dead-letter it, if that raised."""
        try:
            await self._handle(message)
        except Exception as exc:  # noqa: BLE001 - any failure puts the event back, never loses it
            await self._failed(message, exc)
        else:
            await message.ack()
        finally:
            self.progress.moved()

    async def _failed(self, message: Message, exc: Exception) -> None:
        failure = f"{type(exc).__name__}: {exc}"
        if message.attempt >= self._max_deliveries:
            reason = f"failed on the last of {self._max_deliveries} deliveries: {failure}"
            try:
                await bury(self.bus, self._dead_letter_topic, message, reason, message.attempt)
            except Exception as bus_error:  # noqa: BLE001 - the bus will hand it over again
                await self._not_buried(message, bus_error)
                return
            self._report(
                f"event {message.event.id} from {self.topic} failed on delivery "
                f"{message.attempt} ({failure}); sent to {self._dead_letter_topic}"
            )
            return
        delay = nack_delay(message.attempt)
        if not (isinstance(exc, FnEventsError) and exc.reported):  # else said once already
            self._report(
                f"event {message.event.id} from {self.topic} failed ({failure}); "
                f"redelivering in {delay:g}s (delivery {message.attempt})"
            )
        await message.nack(delay)

    async def stop(self, drain_timeout: float = 10.0) -> None:
        if self._watch is not None:
            self._watch.forget(self.progress)
        if self._subscription is not None:
            await self._subscription.close(drain_timeout)
        if self._reader is not None:
            self._reader.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *([self._reader] if self._reader else []), *self._tasks, return_exceptions=True
        )


def _take_free(slots: asyncio.Semaphore) -> None:
    """Take a slot the caller saw free, with nothing run since: ``acquire`` returns
    without waiting then."""
    taking = slots.acquire()
    try:
        taking.send(None)
    except StopIteration:
        return
    taking.close()
    raise RuntimeError("a slot seen free was taken meanwhile")  # nothing else ran: cannot be


class _Resumed:
    """A coroutine the reader started by hand, awaited on from where it first waited, in
    the same task: what it was waiting on goes up to the task, and what the task sends or
    throws back goes down to the coroutine (as ``await`` itself does)."""

    __slots__ = ("_coroutine", "_waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coroutine, self._waiting = coroutine, waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self._coroutine, self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # noqa: BLE001 - the coroutine's to handle
                try:
                    waiting = coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting = coroutine.send(sent)
                except StopIteration:
                    return
