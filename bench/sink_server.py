"""The benchmarks' function server: a real aiohttp server in its own process answering
every POST with 204, so its CPU does not count against the process being measured."""

from __future__ import annotations

import multiprocessing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from tests.brokers.servers import free_port, wait_until_listening


def serve(port: int) -> None:
    """The server (runs in a child process until terminated)."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


@asynccontextmanager
async def sink_server() -> AsyncIterator[str]:
    """A started server in a child process; yields its URL and stops it on exit."""
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port,))
    server.start()
    try:
        await wait_until_listening(port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.join(10)
