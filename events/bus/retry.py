"""Reconnect and backoff, in one place for every backend and source."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator

from events.errors import FnEventsError
from events.observability.console import Console

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

    def __init__(self, label: str, report: Callable[[str], None], say: Callable[[str], None]):
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
