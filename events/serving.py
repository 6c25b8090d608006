"""Starting an HTTP server on a port, with one clear error when the port cannot be had."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from events.errors import FnEventsError


class PortInUse(FnEventsError, OSError):
    """Another process listens on the port this server was given."""


async def listen(runner: web.AppRunner, host: str, port: int, what: str, fix: str) -> None:
    """Start ``runner`` on ``host:port``, with :func:`binding`'s errors."""
    with binding(what, host, port, fix):
        await web.TCPSite(runner, host, port).start()


@contextmanager
def binding(what: str, host: str, port: int, fix: str) -> Iterator[None]:
    """Around listening on ``host:port``: PortInUse says who wanted the port and ``fix``
    (e.g. "pass --port N or --port 0"); other socket errors name the address."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{what}: port {port} is in use; {fix}") from None
        raise FnEventsError(
            f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
