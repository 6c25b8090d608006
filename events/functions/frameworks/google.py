"""Google's functions framework (``functions-framework``): ``http`` and ``cloudevent``.

- ``google-http``: ``def f(request)`` gets a Flask request, and what it returns is
  made into the response by Flask, as the framework does it: ``str``/``bytes`` (200),
  a ``dict`` or ``list`` (JSON), ``(body, status)``, ``(body, status, headers)``,
  ``(body, headers)``, a ``Response``; ``flask.abort`` works. Routes as the framework's:
  every method on every path, except ``/robots.txt`` and ``/favicon.ico`` (404). A
  raised exception answers 500 with the header ``X-Google-Status: crash``. The app's
  templates folder is ``templates/`` next to the source, as the framework sets it.
- ``google-cloudevent``: ``def f(cloud_event)`` gets the framework's event type,
  ``cloudevents.http.CloudEvent`` of the 1.x SDK (``cloudevents.v1.http.CloudEvent``
  in the installed 2.x SDK): ``event["type"]``, ``event.data``,
  ``event.get_attributes()``. Over HTTP (binary or structured mode) the answer is
  ``200 OK`` once it returns; fed by a topic, its return value is ignored. A plain
  request (not a CloudEvent) becomes one as for every fnevents sync function
  (:mod:`events.functions.request`) where the framework would try GCF's legacy
  background-event conversion and otherwise answer 400.

Neither signature has a context: ``context.send`` and ``context.state`` need the
``fnevents`` or ``ofn`` framework. The GCF legacy ``event`` signature, ``@typed``
and the ASGI ``@aio`` variants are not supported.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from events.bindings.http import to_binary
from events.cloudevent import CloudEvent
from events.functions.frameworks.wsgi import call_wsgi, flask_module
from events.functions.loader import Invoker

CRASH_HEADER = "X-Google-Status"


def http_app(
    handler: Callable[..., Any], name: str, framework: str, crash_header: str, call: Callable
) -> Any:
    """A Flask app serving ``handler`` on every path; ``call(flask_request)`` runs it."""
    flask = flask_module(name, framework)
    from werkzeug.routing import Rule

    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    source = Path(getattr(module, "__file__", None) or ".").resolve()
    app = flask.Flask(handler.__module__ or name, template_folder=str(source.parent / "templates"))
    app.url_map.add(Rule("/", defaults={"path": ""}, endpoint="run"))
    app.url_map.add(Rule("/robots.txt", endpoint="not_found"))
    app.url_map.add(Rule("/favicon.ico", endpoint="not_found"))
    app.url_map.add(Rule("/<path:path>", endpoint="run"))
    app.view_functions["run"] = lambda path: call(flask.request._get_current_object())
    app.view_functions["not_found"] = lambda: flask.abort(404, description="Not Found")
    app.register_error_handler(500, lambda error: (str(error), 500, {crash_header: "crash"}))
    return app


class GoogleHttp(Invoker):
    """``framework: google-http``: the function takes the Flask request."""

    takes_requests = True

    def __init__(self, handler: Callable[..., Any], namespace: str, name: str, *_: Any) -> None:
        super().__init__(handler, namespace, name, {})
        self._app = http_app(handler, name, "google-http", CRASH_HEADER, handler)

    async def respond(self, request: web.Request) -> web.Response:
        return await call_wsgi(self._app, request)

    async def __call__(self, event: CloudEvent) -> Any:
        raise TypeError(
            f"Function {self._name} has the Google 'http' signature (it takes an HTTP "
            "request), so it cannot consume a topic: give it no 'input', or use the "
            "'cloudevent' signature"
        )


class GoogleCloudEvent(Invoker):
    """``framework: google-cloudevent``: the function takes a 1.x SDK CloudEvent."""

    def __init__(self, handler: Callable[..., Any], namespace: str, name: str, *_: Any) -> None:
        super().__init__(handler, namespace, name, {})

    async def __call__(self, event: CloudEvent) -> Any:
        sdk_event = to_v1_event(event)
        if inspect.iscoroutinefunction(self._handler):
            await self._handler(sdk_event)
        else:
            await asyncio.to_thread(self._handler, sdk_event)
        return "OK"


def to_v1_event(event: CloudEvent) -> Any:
    """``event`` as the 1.x SDK's ``CloudEvent``, decoded as the framework decodes a request."""
    from cloudevents.v1.http import from_http

    headers, body = to_binary(event)
    return from_http(dict(headers), body)
