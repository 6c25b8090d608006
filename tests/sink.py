"""A real HTTP sink for tests: an aiohttp server on a free loopback port that
records what it receives and answers from a script of responses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from events.bindings.http import from_http
from events.cloudevent import CloudEvent


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class RecordingSink:
    """``replies`` picks the reply for the n-th request (0-based); default 200."""

    def __init__(self, replies: Callable[[int], Reply] | None = None) -> None:
        self.replies = replies or (lambda n: Reply())
        self.requests: list[CloudEvent] = []
        self.accepted: list[CloudEvent] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> RecordingSink:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        (event,) = from_http(request.headers, await request.read())
        reply = self.replies(len(self.requests))
        self.requests.append(event)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if 200 <= reply.status < 300:
            self.accepted.append(event)
            self.arrived.set()
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.accepted) < count:
                self.arrived.clear()
                await self.arrived.wait()
