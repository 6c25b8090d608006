"""What a user sees on the terminal: startup notes, one line per delivery, summaries.

Per-delivery lines are rate limited (``lines_per_second``); past the limit they
are counted instead and a summary line is printed every ``summary_every`` seconds,
so a busy pipeline stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from events.cloudevent import CloudEvent


class Console:
    def __init__(
        self,
        stream: TextIO | None = None,
        lines_per_second: float = 20,
        summary_every: float = 10.0,
        quiet: bool = False,
    ) -> None:
        self._stream = stream or sys.stdout
        self._rate = lines_per_second
        self._summary_every = summary_every
        self._quiet = quiet
        self._allowance = lines_per_second
        self._last = time.monotonic()
        self._window_start = self._last
        self._suppressed = {"delivered": 0, "dead-lettered": 0}

    def say(self, message: str) -> None:
        print(message, file=self._stream, flush=True)

    def warn(self, message: str) -> None:
        self.say(f"warning: {message}")

    def error(self, message: str) -> None:
        self.say(f"error: {message}")

    def delivery(
        self,
        outcome: str,
        where: str,
        target: str,
        event: CloudEvent,
        seconds: float,
        detail: str = "",
    ) -> None:
        """One delivery: ``outcome`` is 'delivered' or 'dead-lettered'."""
        if self._quiet:
            return
        if not self._take():
            self._suppressed[outcome] = self._suppressed.get(outcome, 0) + 1
            self._maybe_summarize()
            return
        stamp = time.strftime("%H:%M:%S")
        extra = f" ({detail})" if detail else ""
        self.say(
            f"{stamp} {outcome:<13} {where} -> {target}  type={event.type} "
            f"id={event.id} {seconds * 1000:.1f}ms{extra}"
        )
        self._maybe_summarize()

    def _take(self) -> bool:
        now = time.monotonic()
        self._allowance = min(self._rate, self._allowance + (now - self._last) * self._rate)
        self._last = now
        if self._allowance >= 1:
            self._allowance -= 1
            return True
        return False

    def _maybe_summarize(self) -> None:
        now = time.monotonic()
        if now - self._window_start < self._summary_every:
            return
        if any(self._suppressed.values()):
            counts = ", ".join(f"{n} {k}" for k, n in self._suppressed.items() if n)
            self.say(f"... and {counts} more in the last {now - self._window_start:.0f}s")
            self._suppressed = dict.fromkeys(self._suppressed, 0)
        self._window_start = now
