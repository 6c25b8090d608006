"""The live figures: one reading per ``interval`` while a page watches, shared by all.

The ticker runs only while at least one page is connected (server-sent events), so
an unwatched console reads nothing. Every page gets the latest snapshot; a slow page
skips snapshots instead of queueing them, so memory per page is one snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson


class Live:
    def __init__(self, snapshot: Callable[[], dict], interval: float = 1.0) -> None:
        self._snapshot = snapshot
        self.interval = interval
        self._changed = asyncio.Condition()
        self._latest: bytes = b""
        self._serial = 0
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    async def watch(self):
        """Yield each new snapshot (as JSON bytes) until :meth:`close`."""
        self._watchers += 1
        if self._task is None:
            self._task = asyncio.create_task(self._tick(), name="console ticker")
        try:
            seen = 0  # the first snapshot is serial 1
            while not self.closing:
                async with self._changed:
                    while self._serial == seen and not self.closing:
                        await self._changed.wait()
                if self.closing:
                    return
                seen = self._serial
                yield self._latest
        finally:
            self._watchers -= 1

    async def _tick(self) -> None:
        try:
            while self._watchers > 0 and not self.closing:
                self._latest = orjson.dumps(self._snapshot())
                async with self._changed:
                    self._serial += 1
                    self._changed.notify_all()
                await asyncio.sleep(self.interval)
        finally:
            self._task = None

    async def close(self) -> None:
        """End every watch (so a server can stop without waiting for open pages)."""
        self.closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
