"""The ``fnevents`` console script.

Signal handling is installed before the rest of fnevents is imported, so a SIGTERM or
Ctrl-C that arrives while the process is still starting is a stop request, not a kill
(see :mod:`events.app.shutdown`).

The event loop is uvloop's where it is installed (a dependency on CPython outside
Windows), asyncio's own otherwise or when ``FNEVENTS_LOOP=asyncio`` says so. The signal
handlers are plain ``signal.signal`` ones, which both loops run: uvloop wakes for them
through the same wakeup fd asyncio uses.
"""

from __future__ import annotations

import os
import signal
import sys

from events.app.shutdown import Shutdown

#: The environment variable that chooses the event loop: ``uvloop`` or ``asyncio``.
LOOP_VARIABLE = "FNEVENTS_LOOP"
LOOPS = ("uvloop", "asyncio")


def use_loop(choice: str | None = None) -> str:
    """Make ``asyncio.run`` use the chosen loop; returns the one in use. ``choice`` (else
    ``FNEVENTS_LOOP``, else uvloop where installed): ``uvloop`` or ``asyncio``; uvloop
    asked for but not installed falls back to asyncio with a warning on stderr."""
    wanted = (choice or os.environ.get(LOOP_VARIABLE) or "").strip().lower()
    if wanted == "asyncio":
        return "asyncio"
    if wanted not in ("", "uvloop"):
        print(
            f"warning: {LOOP_VARIABLE}={wanted!r} is not one of {', '.join(LOOPS)}; "
            "using asyncio's loop",
            file=sys.stderr,
        )
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if wanted:
            print(
                f"warning: {LOOP_VARIABLE}=uvloop but uvloop is not installed; "
                "using asyncio's loop",
                file=sys.stderr,
            )
        return "asyncio"
    import asyncio

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main() -> int:
    shutdown = Shutdown().install()
    use_loop()  # after the handlers: it imports asyncio
    from events.cli.main import main as cli  # after the handlers: this import takes a while

    status = cli(shutdown=shutdown)
    # Python puts the default handlers back while it finalizes, so a late SIGTERM would
    # still turn a clean stop into status 143: from here on, signals are not heard. Ignored
    # for the whole process, not only blocked in this thread: uvloop's worker threads
    # (libuv's pool, for DNS) live on, and the kernel may hand the signal to one of them.
    # (Python leaves an ignored signal ignored while it finalizes.)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return status


if __name__ == "__main__":
    sys.exit(main())
