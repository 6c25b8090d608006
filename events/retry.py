"""Reconnect and backoff, in one place for every backend and source."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from events.console import Console
from events.errors import FnEventsError

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0


def backoff_delays(initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF):
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
) -> None:
    """Run ``run`` until it returns; after an error, say so plainly and start it again."""
    delays = backoff_delays()
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except FnEventsError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - a failing part is restarted, never fatal
            message = f"{type(exc).__name__}: {exc}"
        if on_error is not None:
            on_error()
        delay = next(delays)
        console.error(f"{label}: {message}; retrying in {delay:.1f}s")
        await asyncio.sleep(delay)
