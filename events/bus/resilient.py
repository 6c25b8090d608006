"""Reconnect and backoff, once, in the core: backends report a lost broker; this retries.

A backend raises :class:`BusError` with ``retriable=True`` from ``subscribe``,
``__anext__`` or ``publish`` when its broker is unreachable. The helpers here
say so plainly (once per outage, not once per attempt), back off, and try again:

- :class:`ResilientSubscription` re-subscribes the same topic and group, so a
  consumer survives a broker restart; messages it held unacked come back
  through the broker's own redelivery.
- :func:`publish_until_accepted` retries a publish until the broker holds the
  event, which is what lets a source wait out an outage without losing events.
- :func:`keep_running` restarts a part (a source, a bus start) after an error;
- :class:`Outage` reports failures seen per event (a condition store) once per outage.

A retry reaches the broker only through a connection that is alive: a backend whose
client library can leave a dead connection behind keeps it in
:class:`events.bus.live.LiveClient`, which hands out only a client that says it is
alive (and, after a failed call, answers a health check) and otherwise connects anew.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator

from events.bus.contract import EventBus, Message, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusError, FnEventsError
from events.observability.console import Console
from events.types import Report

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: While the same error repeats, say so again this often, not on every attempt.
REMIND_EVERY = 60.0


def backoff_delays(
    initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF
) -> Iterator[float]:
    """Exponential delays with +-20 % jitter, so replicas don't retry in lockstep."""
    delay = initial
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(delay * 2, maximum)


async def keep_running(
    label: str,
    run: Callable[[], Awaitable[None]],
    console: Console,
    on_error: Callable[[], None] | None = None,
    only_retriable: bool = False,
) -> None:
    """Run ``run`` until it returns; after an error, say so plainly and start it again.

    With ``only_retriable``, an fnevents error that says retrying cannot help
    (bad settings, say) is raised instead of retried.

    The first failure is reported in full; while the same error repeats, only a
    short reminder is printed every ``REMIND_EVERY`` seconds, so an outage is one
    clear message rather than a wall of them.
    """
    delays = backoff_delays()
    last_message, last_said, attempts = "", 0.0, 0
    while True:
        try:
            await run()
            if attempts:
                console.say(f"{label}: recovered after {attempts} failed attempt(s)")
            return
        except asyncio.CancelledError:
            raise
        except FnEventsError as exc:
            if only_retriable and not exc.retriable:
                raise
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - a failing part is restarted, never fatal
            message = f"{type(exc).__name__}: {exc}"
        attempts += 1
        if on_error is not None:
            on_error()
        delay = next(delays)
        now = time.monotonic()
        if message != last_message:
            console.error(f"{label}: {message}; retrying with backoff")
            last_message, last_said = message, now
        elif now - last_said >= REMIND_EVERY:
            console.error(f"{label}: still failing after {attempts} attempts ({message})")
            last_said = now
        await asyncio.sleep(delay)


class Outage:
    """Say once that something is down, remind every ``REMIND_EVERY`` seconds while it stays
    down, and say when it is back; for failures seen per event rather than in one loop.

    ``failed`` and ``recovered`` are cheap when nothing changes, so callers may call them
    on every attempt. Not thread-safe; one event loop."""

    __slots__ = ("_failures", "_label", "_last_said", "_report", "_say", "down")

    def __init__(self, label: str, report: Report, say: Report):
        self._label, self._report, self._say = label, report, say
        self.down, self._failures, self._last_said = False, 0, 0.0

    def failed(self, message: str) -> None:
        """Count one failure; say so if it starts an outage, or as a reminder."""
        self._failures += 1
        now = time.monotonic()
        if not self.down:
            self.down, self._last_said = True, now
            self._report(f"{self._label}: {message}; retrying with backoff")
        elif now - self._last_said >= REMIND_EVERY:
            self._last_said = now
            self._report(
                f"{self._label}: still failing after {self._failures} attempts ({message})"
            )

    def recovered(self) -> None:
        if self.down:
            self._say(f"{self._label}: recovered after {self._failures} failed attempt(s)")
            self.down, self._failures = False, 0


class ResilientSubscription(Subscription):
    def __init__(self, bus: EventBus, topic: str, group: str, report: Report) -> None:
        self._bus, self._topic, self._group, self._report = bus, topic, group, report
        self._current: Subscription | None = None
        self._closed = False

    async def open(self) -> ResilientSubscription:
        self._current = await self._retry(lambda: self._bus.subscribe(self._topic, self._group))
        return self

    @property
    def current(self) -> Subscription | None:
        """The live subscription; None once closed. A reader may call its ``__anext__``
        itself (one wrapper call less per message) and hand a ``BusError`` to ``recover``."""
        return None if self._closed else self._current

    async def __anext__(self) -> Message:
        while True:
            current = self.current
            if current is None:
                raise StopAsyncIteration
            try:
                return await current.__anext__()
            except BusError as exc:
                await self.recover(exc)

    async def recover(self, exc: BusError) -> None:
        """After ``exc`` from reading: raise it if retrying cannot help (or this is closed),
        else re-subscribe, with backoff, saying so."""
        if not exc.retriable or self._closed or self._current is None:
            raise exc
        self._report(f"lost the bus while reading {self._topic}: {exc}; reconnecting")
        await self._current.close(drain_timeout=0)
        self._current = await self._retry(lambda: self._bus.subscribe(self._topic, self._group))
        self._report(f"reading {self._topic} again")

    async def _retry(self, attempt):
        delays = backoff_delays()
        reported = False
        while True:
            try:
                return await attempt()
            except BusError as exc:
                if not exc.retriable:
                    raise
                delay = next(delays)
                if not reported:
                    self._report(f"cannot subscribe to {self._topic}: {exc}; retrying with backoff")
                    reported = True
                await asyncio.sleep(delay)

    async def close(self, drain_timeout: float = 5.0) -> None:
        self._closed = True
        if self._current is not None:
            await self._current.close(drain_timeout)


async def publish_until_accepted(
    bus: EventBus, topic: str, event: CloudEvent, key: str | None, report: Report
) -> None:
    """Publish, waiting out a broker outage with backoff; returns once the bus holds it."""
    delays = None  # made (and the outage reported) on the first failure: most need none
    while True:
        try:
            await bus.publish(topic, event, key=key)
        except BusError as exc:
            if not exc.retriable:
                raise
            if delays is None:
                delays = backoff_delays()
                report(f"cannot publish to {topic}: {exc}; holding events and retrying")
            await asyncio.sleep(next(delays))
        else:
            if delays is not None:
                report(f"publishing to {topic} again")
            return
