"""``fnevents run --console``: its flags, and where the console is served.

By default the console joins the ops server (``--host``/``--port``, loopback unless
told otherwise) under ``/console/``. With ``--console-port``, or a
``--console-host`` different from ``--host``, it gets a server of its own there
(so ``--host 0.0.0.0`` for a metrics scraper does not expose the console too).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from events.observability.recent import RecentEvents

if TYPE_CHECKING:
    from events.app.console.server import WebConsole

DEFAULT_CONSOLE_PORT = 9465
TOKEN_VARIABLE = "FNEVENTS_CONSOLE_TOKEN"


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--console",
        action="store_true",
        help="serve a live web console at /console/ on the ops port: the topology with "
        "events/s, recent events, dead letters, what was loaded",
    )
    run.add_argument(
        "--console-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address of the console (default 127.0.0.1); one other than --host gets its "
        f"own server on --console-port (default {DEFAULT_CONSOLE_PORT})",
    )
    run.add_argument(
        "--console-port",
        type=int,
        metavar="PORT",
        help="serve the console on its own port instead of the ops port (0: a free one)",
    )
    run.add_argument(
        "--console-token",
        default=os.environ.get(TOKEN_VARIABLE),
        metavar="TOKEN",
        help="allow replaying dead letters from the console to whoever gives this token "
        f"(default ${TOKEN_VARIABLE}); without one, replay is off",
    )


@dataclass
class ConsolePlan:
    console: WebConsole
    own_server: bool
    host: str
    port: int

    @property
    def ops_routes(self) -> list:
        return [] if self.own_server else [self.console.add_routes]


def plan(args: argparse.Namespace) -> ConsolePlan | None:
    """What ``--console*`` asks for; None without ``--console``."""
    if not args.console:
        return None
    own = args.console_port is not None or args.console_host != args.host
    port = args.console_port if args.console_port is not None else DEFAULT_CONSOLE_PORT
    # Imported here: a run without --console does not pay for loading the console's code.
    from events.app.console.server import WebConsole

    console = WebConsole(RecentEvents(), args.console_token)
    return ConsolePlan(console, own, args.console_host, port)
