"""The sync host: a function served as an HTTP CloudEvents endpoint.

HTTP contract of the endpoint (``POST /``, any path):
- the request is a CloudEvent in binary, structured or batch mode; anything
  else gets ``400`` with the reason;
- the function returning ``None`` gives ``204``; a ``str``/``bytes`` gives ``200``
  with that body; anything else is returned as JSON with ``200``;
- the function raising gives ``500`` with the error, and the traceback is printed,
  so the trigger retries and, in the end, dead-letters the event with that reason.
"""

from __future__ import annotations

import traceback
from typing import Any

import orjson
from aiohttp import web

from events.bindings.http import from_http
from events.errors import InvalidCloudEvent
from events.functions.loader import Invoker


class FunctionServer:
    """One hosted function on its own port."""

    def __init__(self, name: str, invoke: Invoker, host: str, port: int) -> None:
        self.name = name
        self._invoke = invoke
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", self._handle_request)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_request(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            events = from_http(request.headers, body)
        except InvalidCloudEvent as exc:
            return web.Response(status=400, text=f"not a valid CloudEvent: {exc}\n")
        result: Any = None
        for event in events:
            try:
                result = await self._invoke(event)
            except Exception as exc:  # noqa: BLE001 - the user's error becomes a 500, not a crash
                traceback.print_exc()
                return web.Response(
                    status=500, text=f"function {self.name} raised {type(exc).__name__}: {exc}\n"
                )
        return _response(result)


def _response(result: Any) -> web.Response:
    if result is None:
        return web.Response(status=204)
    if isinstance(result, bytes):
        return web.Response(body=result, content_type="application/octet-stream")
    if isinstance(result, str):
        return web.Response(text=result)
    return web.Response(body=orjson.dumps(result), content_type="application/json")
