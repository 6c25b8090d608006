"""The sync host: a function served over HTTP, for CloudEvents and plain requests alike.

HTTP contract of the endpoint (any method but ``OPTIONS``, any path):
- a CloudEvent in binary, structured or batch mode is passed to the function as
  it is; a request that claims to be a CloudEvent but is invalid gets ``400``
  with the reason;
- any other request is a plain request and becomes a CloudEvent first (see
  :mod:`events.functions.request`), so the function has one signature;
- the function returning ``None`` gives ``204``; a CloudEvent (ours or the SDK's)
  gives ``200`` with that event in binary mode (a trigger publishes it as a
  reply); a ``str``/``bytes`` gives ``200`` with that body; anything else is
  returned as JSON with ``200``;
- the function raising gives ``500`` with the error, and the traceback is printed,
  so the trigger retries and, in the end, dead-letters the event with that reason.

A function whose framework takes the HTTP request itself (Google's ``http``
signature, OpenFunction's Python framework; see :mod:`events.functions.frameworks`)
gets the request as it is and its framework makes the response.

The response is sent only after every ``context.send`` of the call is done
(on the bus, or on Kafka for a binding output), so a ``2xx`` means the outputs
are safe.
"""

from __future__ import annotations

import traceback
from typing import Any

import orjson
from aiohttp import web

from events.bindings.http import to_binary
from events.bindings.sdk import from_sdk
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent
from events.functions.loader import Invoker
from events.functions.request import request_events
from events.observability import tracing
from events.serving import listen

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class FunctionServer:
    """One hosted function on its own port."""

    def __init__(
        self, name: str, invoke: Invoker, host: str, port: int, namespace: str = "default"
    ) -> None:
        self.name = name
        self._invoke = invoke
        self._host = host
        self._port = port
        self._source = f"/functions/{namespace}/{name}"
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        handler: Any = self._handle_request
        if tracing.enabled:  # user code runs inside a SERVER span continuing the caller's trace
            handler = tracing.function_server(handler, self._source.removeprefix("/functions/"))
        for method in METHODS:
            app.router.add_route(method, "/{tail:.*}", handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        what = f"function {self._source.removeprefix('/functions/')}"
        await listen(
            self._runner,
            self._host,
            self._port,
            what,
            "give it another 'port' (0 picks a free one)",
        )
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_request(self, request: web.Request) -> web.StreamResponse:
        if self._invoke.takes_requests:  # the framework answers the request itself
            return await self._invoke.respond(request)
        body = await request.read()
        try:
            events = request_events(request.headers, body, request.path, self._source)
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
        try:
            return response(result)
        except InvalidCloudEvent as exc:
            return web.Response(
                status=500, text=f"function {self.name} returned an invalid CloudEvent: {exc}\n"
            )


def response(result: Any) -> web.Response:
    """The HTTP answer for what a function returned."""
    if result is None:
        return web.Response(status=204)
    if hasattr(result, "get_attributes") and hasattr(result, "get_data"):
        result = from_sdk(result)
    if isinstance(result, CloudEvent):
        headers, body = to_binary(result)
        return web.Response(status=200, body=body, headers=headers)
    if isinstance(result, bytes):
        return web.Response(body=result, content_type="application/octet-stream")
    if isinstance(result, str):
        return web.Response(text=result)
    return web.Response(body=orjson.dumps(result), content_type="application/json")
