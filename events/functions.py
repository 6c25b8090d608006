"""Hosting plain Python functions as HTTP CloudEvents endpoints (sync functions).

A function is any callable taking one argument, the event, as the official
``cloudevents`` SDK represents it (so functions written for functions-framework
style hosts keep working). It may be ``async``; a plain function runs in a
worker thread so it cannot stall the event loop.

HTTP contract of the endpoint (``POST /``, any path):
- the request is a CloudEvent in binary, structured or batch mode; anything
  else gets ``400`` with the reason;
- the function returning ``None`` gives ``204``; a ``str``/``bytes`` gives ``200``
  with that body; anything else is returned as JSON with ``200``;
- the function raising gives ``500`` with the error, and the traceback is printed,
  so the trigger retries and, in the end, dead-letters the event with that reason.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from events.bindings.http import from_http
from events.bindings.sdk import to_sdk
from events.errors import FnEventsError, InvalidCloudEvent


class FunctionLoadError(FnEventsError, ImportError):
    """A declared Function's source or target cannot be loaded."""


def load_target(source: str, target: str, base_dir: Path, name: str) -> Callable[..., Any]:
    """Import ``target`` from ``source``: a ``.py`` path (relative to ``base_dir``) or a module."""
    if source.endswith(".py"):
        path = (base_dir / source).resolve()
        if not path.is_file():
            raise FunctionLoadError(f"Function {name}: source file {path} does not exist")
        module_name = f"fnevents_function_{name.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise FunctionLoadError(f"Function {name}: importing {path} failed: {exc!r}") from exc
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise FunctionLoadError(
                f"Function {name}: cannot import module {source}: {exc}"
            ) from exc
    handler = getattr(module, target, None)
    if not callable(handler):
        raise FunctionLoadError(
            f"Function {name}: {source} has no function named '{target}' (spec.target)"
        )
    return handler


class FunctionServer:
    """One hosted function on its own port."""

    def __init__(self, name: str, handler: Callable[..., Any], host: str, port: int) -> None:
        self.name = name
        self._handler = handler
        self._is_async = inspect.iscoroutinefunction(handler)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", self._invoke)
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

    async def _invoke(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            events = from_http(request.headers, body)
        except InvalidCloudEvent as exc:
            return web.Response(status=400, text=f"not a valid CloudEvent: {exc}\n")
        result: Any = None
        for event in events:
            try:
                result = await self._call(to_sdk(event))
            except Exception as exc:  # noqa: BLE001 - the user's error becomes a 500, not a crash
                traceback.print_exc()
                return web.Response(
                    status=500, text=f"function {self.name} raised {type(exc).__name__}: {exc}\n"
                )
        return _response(result)

    async def _call(self, event: Any) -> Any:
        if self._is_async:
            return await self._handler(event)
        return await asyncio.to_thread(self._handler, event)


def _response(result: Any) -> web.Response:
    if result is None:
        return web.Response(status=204)
    if isinstance(result, bytes):
        return web.Response(body=result, content_type="application/octet-stream")
    if isinstance(result, str):
        return web.Response(text=result)
    return web.Response(body=orjson.dumps(result), content_type="application/json")
