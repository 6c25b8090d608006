"""OpenFunction's Python framework (``ofn-functions-framework`` 0.2): ``def f(context)``.

The function takes one argument, the context (OpenFunction's ``UserContext``):

- ``context.get_http_request()``: the Flask request of a sync call; None when fed
  by a topic.
- ``context.get_topic_event()``: fed by a topic, a 1.x SDK
  ``cloudevents.sdk.event.v1.Event`` as Dapr's gRPC subscriber builds it (``.data``
  the payload's bytes, ``.EventType()``, ...); None for HTTP.
- ``context.get_binding_request()``: fed by a topic, an object like Dapr's
  ``BindingRequest``: ``.data`` (bytes), ``.metadata`` (the event's attributes and
  extensions as strings), ``.text()``; None for HTTP.
- ``context.send(output_name, data)``: fnevents' ``context.send`` to a declared
  output (a bus topic or a binding); ``data`` becomes the output event's data.
- The return value: for a sync call, made into the response by Flask as the
  framework does (``str``, ``dict``, tuples, ``Response``); a raise answers 500 with
  ``X-OpenFunction-Status: crash``. Fed by a topic: ignored.
- ``context.dapr_client``, ``context.out``, ``context.runtime_context``: not offered
  (there is no Dapr sidecar). ``context.logger`` is a logger named after the Function.

A topic-fed function gets both ``get_topic_event()`` and ``get_binding_request()``,
since whether an event came from a Dapr binding or a pub/sub topic is not known on
the bus. fnevents adds ``context.state`` (:mod:`events.functions.state`). A sync
function's outputs are sent before the response goes out, as for every fnevents
function.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from events.bindings.data import canonical_string, encode_data
from events.cloudevent import CloudEvent
from events.functions.context import FunctionContext, Send
from events.functions.frameworks.wsgi import call_wsgi
from events.functions.loader import Invoker
from events.functions.state import StateStores

CRASH_HEADER = "X-OpenFunction-Status"
CONTEXT_KEY = "fnevents.context"


class BindingRequest:
    """What Dapr's gRPC app gives an input binding handler: ``data`` and ``metadata``."""

    def __init__(self, data: bytes, metadata: Mapping[str, str]) -> None:
        self.data = data
        self.metadata = dict(metadata)

    def text(self) -> str:
        return self.data.decode("utf-8")


class OfnContext(FunctionContext):
    """OpenFunction's ``UserContext`` over fnevents' context (see the module docstring)."""

    def __init__(
        self,
        namespace: str,
        name: str,
        outputs: Mapping[str, Send],
        state: StateStores | None = None,
        http_request: Any = None,
        event: CloudEvent | None = None,
    ) -> None:
        super().__init__(namespace, name, outputs, state)
        self.logger = logging.getLogger(f"fnevents.function.{namespace}.{name}")
        self._http_request = http_request
        self._event = event

    def get_http_request(self) -> Any:
        return self._http_request

    def get_topic_event(self) -> Any:
        return None if self._event is None else topic_event(self._event)

    def get_binding_request(self) -> BindingRequest | None:
        if self._event is None:
            return None
        metadata = {
            name: canonical_string(value) for name, value in self._event.attributes().items()
        }
        return BindingRequest(encode_data(self._event) or b"", metadata)


def topic_event(event: CloudEvent) -> Any:
    """``event`` as Dapr's gRPC subscriber hands it over: a 1.x SDK ``v1.Event``, raw data."""
    from cloudevents.v1.sdk.event import v1

    sdk_event = v1.Event()
    sdk_event.SetEventID(event.id)
    sdk_event.SetSource(event.source)
    sdk_event.SetEventType(event.type)
    sdk_event.SetData(encode_data(event) or b"")
    if event.datacontenttype:
        sdk_event.SetContentType(event.datacontenttype)
    if event.subject:
        sdk_event.SetSubject(event.subject)
    return sdk_event


class OfnInvoker(Invoker):
    """``framework: ofn``: sync calls answer the request; topic events are passed in."""

    takes_requests = True
    _app: Any = None  # the Flask app, built on the first HTTP request

    def _context(self, **kwargs: Any) -> OfnContext:
        context = OfnContext(self._namespace, self._name, self._outputs, self._states, **kwargs)
        context.bind(asyncio.get_running_loop())
        return context

    async def respond(self, request: web.Request) -> web.Response:
        if self._app is None:
            from events.functions.frameworks.google import http_app

            self._app = http_app(self._handler, self._name, "ofn", CRASH_HEADER, self._call_sync)
        # one context per request, made on the loop and carried to the Flask thread in the
        # WSGI environ, so concurrent requests never share one
        context = self._context()
        try:
            return await call_wsgi(self._app, request, {CONTEXT_KEY: context})
        finally:
            await context.flush()

    def _call_sync(self, flask_request: Any) -> Any:
        """The Flask view (in a worker thread): the function with this request's context."""
        context: OfnContext = flask_request.environ[CONTEXT_KEY]
        context._http_request = flask_request
        if inspect.iscoroutinefunction(self._handler):
            assert context._loop is not None
            future = asyncio.run_coroutine_threadsafe(self._handler(context), context._loop)
            return future.result()
        return self._handler(context)

    async def __call__(self, event: CloudEvent) -> Any:
        context = self._context(event=event)
        if inspect.iscoroutinefunction(self._handler):
            result = await self._handler(context)
        else:
            result = await asyncio.to_thread(self._handler, context)
        await context.flush()
        return result
