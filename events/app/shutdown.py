"""Stop requests from SIGINT and SIGTERM, handled from the first line of ``main`` to the last.

asyncio's ``loop.add_signal_handler`` puts the default handler back when the loop closes,
so a second SIGTERM that lands during the final cleanup killed the process with status
143 although it had stopped cleanly. Process managers send it twice as a rule: ``timeout``
signals the child and then its process group. So one plain ``signal.signal`` handler is
installed before anything else is imported and stays installed:

- the first SIGINT or SIGTERM asks for a graceful stop (sources stop, deliveries in flight
  drain, exit 0); a repeated SIGTERM is the same request;
- a second Ctrl-C while draining forces a quick stop: what is in flight goes back to the
  bus unacked (it is redelivered: nothing is lost) and the exit status is 130;
- a signal that arrives before the runtime starts (while importing or loading manifests)
  means nothing is started and the exit status is 0.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

#: The exit status of a stop forced by a second Ctrl-C (128 + SIGINT, as shells report it).
FORCED_EXIT = 130


class Shutdown:
    """What the user asked for, by signal. One per process; install it once."""

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self._interrupts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._force: asyncio.Event | None = None
        self._installed = False

    def install(self) -> Shutdown:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self._installed = True
        return self

    def release(self) -> None:
        """Give the signals back their usual meaning (Ctrl-C raises KeyboardInterrupt), for
        the short commands; does nothing unless :meth:`install` ran."""
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._installed = False

    def attach(self) -> tuple[asyncio.Event, asyncio.Event]:
        """Events for the running loop: (stop requested, stop forced). A request that came
        before the loop ran is already set."""
        import asyncio  # here, not above: the handlers are installed before asyncio loads

        self._loop = asyncio.get_running_loop()
        self._stop, self._force = asyncio.Event(), asyncio.Event()
        self._wake()
        return self._stop, self._force

    def request(self, forced: bool = False) -> None:
        """Ask for a stop, as a signal would (also for tests and embedding)."""
        self.requested = True
        self.forced = self.forced or forced
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self._interrupts += 1
        self.request(forced=self._interrupts >= 2)

    def _wake(self) -> None:
        if self._stop is not None and self.requested:
            self._stop.set()
        if self._force is not None and self.forced:
            self._force.set()
