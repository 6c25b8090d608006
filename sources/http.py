"""HTTP ingest: devices and functions POST events; fnevents' own source kind.

``POST`` a CloudEvent (binary, structured or batch mode) and it passes through
unchanged; ``POST`` plain JSON and it is wrapped (``dev.fnevents.http.request``,
``source`` the URL path, ``id`` from an ``Idempotency-Key`` header when sent, else
a hash of path and body, so a device's retry of the same request keeps its id).

Responses:
- ``200`` with ``{"accepted": n, "ids": [...]}`` -- only once the bus holds every event;
- ``400`` for an invalid CloudEvent or invalid JSON (the input also goes to the
  dead letter with the reason), ``401`` for a missing or wrong bearer token,
  ``413`` past ``maxBodyBytes``, ``415`` for a body that is neither;
- ``503`` with ``Retry-After`` if the event could not be made safe (the bus or
  sink is failing): the client should send again.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, ClassVar

import orjson
from aiohttp import web

from events.bindings.http import from_http, is_cloudevent
from events.cloudevent import is_json_content_type
from events.errors import FnEventsError
from events.serving import listen
from sources.contract import Outlet, Source
from sources.normalize import Origin, Rejected, content_id, passthrough, wrap

RETRY_AFTER_SECONDS = "5"


class HttpSource(Source):
    kind: ClassVar[str] = "http"

    def url(self) -> str:
        host = "localhost" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.settings.port}{self.settings.path}"

    def describe(self) -> str:
        return f"http {self.identity.label} on {self.url()}"

    async def run(self, outlet: Outlet) -> None:
        self._outlet = outlet
        app = web.Application(client_max_size=self.settings.maxBodyBytes)
        app.router.add_post(self.settings.path, self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            fix = "give the event another 'port', or stop what holds it"
            await listen(runner, self.settings.host, self.settings.port, self.describe(), fix)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        outlet = self._outlet
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than maxBodyBytes ({self.settings.maxBodyBytes})")
        try:
            events = self._events(request, body)
        except Rejected as exc:
            await outlet.reject(body, exc.reason, f"http:{content_id(request.path, body)}")
            return _error(400, exc.reason)
        except _Unsupported as exc:
            return _error(415, str(exc))
        try:
            for event in events:
                await outlet.emit(event)
        except FnEventsError as exc:
            return _error(
                503, f"not accepted, send again: {exc}", {"Retry-After": RETRY_AFTER_SECONDS}
            )
        return web.json_response({"accepted": len(events), "ids": [e.id for e in events]})

    def _authorized(self, request: web.Request) -> bool:
        token = self.settings.bearerToken
        if not token:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _events(self, request: web.Request, body: bytes) -> list[Any]:
        if is_cloudevent(request.headers):
            return passthrough(from_http, request.headers, body)
        content_type = request.headers.get("Content-Type")
        if content_type and not is_json_content_type(content_type):
            raise _Unsupported(f"expected a CloudEvent or JSON, got Content-Type {content_type!r}")
        if not body.strip():
            raise Rejected("empty body: send JSON or a CloudEvent")
        key = request.headers.get("Idempotency-Key")
        origin = Origin(
            kind="http",
            source=request.path,
            id=f"http:{key}" if key else f"http:{content_id(request.path, body)}",
            subject=self.identity.event,
        )
        return [wrap(body, origin, content_type or "application/json")]


class _Unsupported(ValueError):
    pass


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": reason}),
        content_type="application/json",
        headers=headers,
    )
