"""Starting an HTTP server on a port, with one clear error when the port cannot be had."""

from __future__ import annotations

import errno

from aiohttp import web

from events.errors import FnEventsError


class PortInUse(FnEventsError, OSError):
    """Another process listens on the port this server was given."""


async def listen(runner: web.AppRunner, host: str, port: int, what: str, fix: str) -> None:
    """Start ``runner`` on ``host:port``; PortInUse says who wanted the port and ``fix``
    (e.g. "pass --port N or --port 0"); other socket errors name the address."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{what}: port {port} is in use; {fix}") from None
        raise FnEventsError(
            f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
