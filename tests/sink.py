"""A real HTTP sink for tests: an aiohttp server on a free loopback port that
records what it receives and answers from a script of responses.

Besides the events it records, per request, the CloudEvents mode it arrived in
(``modes``) and the status it answered (``statuses``); it tracks how many
requests it holds at once (``in_flight``, highest: ``max_in_flight``); a
``gate`` (an ``asyncio.Event``) holds every request until it is set. A 2xx whose
client gave up before the answer (a timed-out attempt) is recorded in
``abandoned``, not ``accepted``: the client never learnt that it was taken.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from events.bindings.http import from_http, to_binary, to_structured
from events.cloudevent import CloudEvent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Reply:
    """One scripted answer. ``event`` makes it a CloudEvents reply (binary mode, or
    structured with ``structured=True``), replacing ``body``."""

    status: int = 200
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    event: CloudEvent | None = None
    structured: bool = False

    def response(self) -> web.Response:
        headers, body = dict(self.headers), self.body
        if self.event is not None:
            encode = to_structured if self.structured else to_binary
            extra, body = encode(self.event)
            headers.update(extra)
        if isinstance(body, str):
            body = body.encode()
        return web.Response(status=self.status, body=body, headers=headers)


async def serve(path: str, handler: Handler) -> tuple[web.AppRunner, str]:
    """An aiohttp server on a free loopback port answering POSTs to ``path``: its runner
    (``cleanup()`` stops it) and its URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/"


class RecordingSink:
    """``replies`` picks the reply for the n-th request (0-based); default 200.

    ``by_event``, if given, picks it instead from the event and how many times
    that event id arrived before (0 on its first attempt).
    """

    def __init__(
        self,
        replies: Callable[[int], Reply] | None = None,
        by_event: Callable[[CloudEvent, int], Reply] | None = None,
    ) -> None:
        self.replies = replies or (lambda n: Reply())
        self.by_event = by_event
        self.seen: collections.Counter[str] = collections.Counter()
        self.requests: list[CloudEvent] = []
        self.accepted: list[CloudEvent] = []
        self.abandoned: list[CloudEvent] = []
        self.modes: list[str] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> RecordingSink:
        self._runner, self.url = await serve("/{tail:.*}", self._handle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        if self.gate is not None:
            self.gate.set()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        (event,) = from_http(request.headers, await request.read())
        if self.by_event is not None:
            reply = self.by_event(event, self.seen[event.id])
        else:
            reply = self.replies(len(self.requests))
        self.seen[event.id] += 1
        self.requests.append(event)
        self.modes.append("structured" if "cloudevents" in request.content_type else "binary")
        self.statuses.append(reply.status)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.in_flight -= 1
        if 200 <= reply.status < 300:
            gone = request.transport is None or request.transport.is_closing()
            (self.abandoned if gone else self.accepted).append(event)
            self.arrived.set()
        return reply.response()

    @property
    def failures_served(self) -> int:
        """Answers that were not 2xx."""
        return sum(1 for status in self.statuses if not 200 <= status < 300)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.accepted) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Until at least ``count`` requests have arrived (answered or not)."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                await asyncio.sleep(0.01)
