"""The ``fnevents`` console script.

Signal handling is installed before the rest of fnevents is imported, so a SIGTERM or
Ctrl-C that arrives while the process is still starting is a stop request, not a kill
(see :mod:`events.app.shutdown`).
"""

from __future__ import annotations

import signal
import sys

from events.app.shutdown import Shutdown


def main() -> int:
    shutdown = Shutdown().install()
    from events.cli.main import main as cli  # after the handlers: this import takes a while

    status = cli(shutdown=shutdown)
    # Python puts the default handlers back while it finalizes, so a late SIGTERM would
    # still turn a clean stop into status 143: from here on, signals wait, unheard.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    return status


if __name__ == "__main__":
    sys.exit(main())
