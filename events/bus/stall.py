"""The stall report: a consumer that has not moved for a while although work waits for it.

Every consumer loop (:class:`events.bus.consumer.Consumer`, which reads for triggers and
async functions) marks its :class:`Progress` when it hands a message to its handler and
when a message is settled. :class:`StallWatch` looks at each registered consumer every
few seconds and asks its bus what waits on the broker for the consumer's group (the
optional :class:`events.bus.backlog.Backlog` capability). A consumer that has not moved
for ``stall_after`` seconds while that backlog is above zero is *stalled*: one line says
so, and :meth:`StallWatch.stalls` (what ``/readyz`` answers 503 with) names it until it
moves again, which another line says. Idle is not stalled: with nothing waiting, no
progress is expected.

A bus without a backlog query (MQTT, the Dapr sidecar) cannot tell idle from stuck, so
its consumers are never reported. A backlog that cannot be read right now (the broker is
down) declares nothing new; a stall already declared stays until the consumer moves or
the broker says nothing waits any more. Every backlog read is also handed to ``record``
(the runtime's Prometheus gauge ``fnevents_backlog{topic,group}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from events.bus.backlog import Backlog, backlog_of
from events.bus.contract import EventBus
from events.types import Report

#: Seconds without progress, with work waiting, before a consumer counts as stalled.
DEFAULT_STALL_AFTER = 30.0
#: Longest a backlog query may take before it counts as unanswered.
QUERY_TIMEOUT = 5.0
#: Bounds on how often the consumers are looked at (a third of ``stall_after``).
MIN_INTERVAL, MAX_INTERVAL = 0.5, 5.0

Record = Callable[[str, str, int], None]


class Progress:
    """When a consumer last moved (monotonic seconds)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = time.monotonic()

    def moved(self) -> None:
        self.last = time.monotonic()


@dataclass(eq=False)
class _Watched:
    label: str
    topic: str
    group: str
    query: Backlog | None
    progress: Progress
    declared: float | None = None  # when the stall was reported
    reason: str = ""


class StallWatch:
    """Watches consumers for stalls; ``start`` it, ``watch`` each consumer, ``stop`` it."""

    def __init__(
        self,
        stall_after: float,
        say: Report,
        warn: Report,
        record: Record | None = None,
        interval: float | None = None,
    ) -> None:
        self.stall_after = stall_after
        self._say, self._warn, self._record = say, warn, record
        third = stall_after / 3
        self.interval = interval or min(max(third, MIN_INTERVAL), MAX_INTERVAL)
        self._watched: list[_Watched] = []
        self._task: asyncio.Task[None] | None = None

    def watch(self, label: str, bus: EventBus, topic: str, group: str) -> Progress:
        """Register a consumer (``label`` says whose, e.g. ``trigger default/t input a``);
        returns the Progress it must mark."""
        progress = Progress()
        self._watched.append(_Watched(label, topic, group, backlog_of(bus), progress))
        return progress

    def forget(self, progress: Progress) -> None:
        self._watched = [w for w in self._watched if w.progress is not progress]

    def stalls(self) -> list[str]:
        """One line per consumer stalled right now; empty when none is."""
        return [w.reason for w in self._watched if w.declared is not None]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stall watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def check(self) -> None:
        """Look at every consumer once (what the watch does every ``interval``)."""
        watched = list(self._watched)
        backlogs = await asyncio.gather(*(self._backlog(w) for w in watched))
        for item, backlog in zip(watched, backlogs, strict=True):
            self._judge(item, backlog)

    async def _backlog(self, item: _Watched) -> int | None:
        if item.query is None:
            return None
        try:
            async with asyncio.timeout(QUERY_TIMEOUT):
                backlog = await item.query.backlog(item.topic, item.group)
        except Exception:  # noqa: BLE001 - an unanswered query is "unknown", said by the reader
            return None
        if backlog is not None and self._record is not None:
            self._record(item.topic, item.group, backlog)
        return backlog

    def _judge(self, item: _Watched, backlog: int | None) -> None:
        now = time.monotonic()
        if item.declared is None:
            idle = now - item.progress.last
            if backlog and idle >= self.stall_after:
                item.declared = now
                item.reason = (
                    f"{item.label}: no progress on {item.topic} for {idle:.0f}s while "
                    f"{backlog:,} event(s) wait on the broker for group {item.group}"
                )
                self._warn(f"{item.reason}; /readyz reports not ready until it moves")
            return
        stalled_for = now - item.declared + self.stall_after
        if item.progress.last > item.declared:
            item.declared = None
            self._say(f"{item.label}: moving again on {item.topic} after {stalled_for:.0f}s")
        elif backlog == 0:
            item.declared = None
            self._say(f"{item.label}: nothing waits on {item.topic} any more; not stalled")
