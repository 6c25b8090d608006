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

Progress: with a :class:`~events.bus.stall.StallWatch`, the consumer registers
under ``label`` and marks its progress when it hands a message to ``handle`` and
when it settles one, so the watch can report it stalled (no progress while work
waits on the broker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from events.bus.contract import EventBus, Message
from events.bus.poison import bounded, bury
from events.bus.resilient import ResilientSubscription
from events.bus.stall import Progress, StallWatch
from events.errors import FnEventsError
from events.types import Report

Handle = Callable[[Message], Awaitable[None]]

MAX_NACK_DELAY = 30.0


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
    ) -> None:
        self.bus, self.topic, self.group = bus, topic, group
        self._handle, self._slots, self._report = handle, slots, report
        self._max_deliveries = max_deliveries
        self._dead_letter_topic = dead_letter_topic
        self._subscription = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: workers waiting for a message, the most recently idle last
        self._idle: list[asyncio.Future[Message]] = []
        self._watch = watch
        self._label = label or f"consumer of {topic} (group {group})"
        #: When this consumer last moved; registered with ``watch`` once started.
        self.progress = Progress()

    async def start(self, on_message: Callable[[], None] | None = None) -> None:
        connection = ResilientSubscription(self.bus, self.topic, self.group, self._report)
        self._subscription = bounded(
            await connection.open(), self.bus, self._max_deliveries, self._dead_letter_topic
        )
        if self._watch is not None:
            self.progress = self._watch.watch(self._label, self.bus, self.topic, self.group)
        self._reader = asyncio.create_task(self._read(on_message), name=f"consume {self.topic}")

    async def _read(self, on_message: Callable[[], None] | None) -> None:
        assert self._subscription is not None
        moved, idle = self.progress.moved, self._idle
        try:
            async for message in self._subscription:
                moved()
                if on_message is not None:
                    on_message()
                await self._slots.acquire()
                if idle:  # a worker waits: hand it the message (no task per message)
                    idle.pop().set_result(message)
                else:
                    task = asyncio.create_task(self._work(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - say why reading stopped, don't die silently
            self._report(f"stopped reading {self.topic}: {exc}")

    async def _work(self, message: Message) -> None:
        """A worker: settle ``message``, then wait for the next one the reader hands over.
        Workers are started as the reader needs them (at most one per slot, as a task per
        message was before) and kept until ``stop``: creating a task costs more than
        handling a message that needs no I/O."""
        loop, idle = asyncio.get_running_loop(), self._idle
        while True:
            await self._settle(message)
            waiter: asyncio.Future[Message] = loop.create_future()
            idle.append(waiter)
            message = await waiter

    async def _settle(self, message: Message) -> None:
        try:
            await self._handle(message)
        except Exception as exc:  # noqa: BLE001 - any failure puts the event back, never loses it
            await self._failed(message, exc)
        else:
            await message.ack()
        finally:
            self._slots.release()
            self.progress.moved()

    async def _failed(self, message: Message, exc: Exception) -> None:
        failure = f"{type(exc).__name__}: {exc}"
        if message.attempt >= self._max_deliveries:
            reason = f"failed on the last of {self._max_deliveries} deliveries: {failure}"
            try:
                await bury(self.bus, self._dead_letter_topic, message, reason, message.attempt)
            except Exception as bus_error:  # noqa: BLE001 - the bus will hand it over again
                self._report(f"cannot dead-letter event {message.event.id}: {bus_error}")
                await message.nack(nack_delay(message.attempt))
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
