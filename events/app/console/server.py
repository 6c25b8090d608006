"""The web console's HTTP routes, under ``/console/``.

Pages: ``/console/`` (one HTML page, its script and style from ``static/``). Data, as
JSON: ``api/topology``, ``api/loaded``, ``api/recent?where=&limit=``,
``api/deadletters?topic=``, and ``api/stream`` (server-sent events: one snapshot of
the figures per second while the page is open). Writing: ``POST
api/deadletters/replay`` with ``Authorization: Bearer TOKEN``; without a token given
at start (``--console-token``) replay is off, and a request without the right token
is answered 401.

The routes join the ops server (``/healthz``, ``/metrics``) by default, or get a server
of their own (:meth:`WebConsole.start_own`) when the console listens elsewhere.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from events.app.console import letters
from events.app.console.live import Live
from events.app.console.loaded import loaded
from events.app.console.stats import Rates, read
from events.app.console.topology import Topology, build
from events.errors import FnEventsError
from events.observability.recent import RecentEvents
from events.serving import listen

if TYPE_CHECKING:
    from events.app.runtime import Runtime

STATIC = {
    "index.html": "text/html",
    "console.js": "text/javascript",
    "console.css": "text/css",
}


class WebConsole:
    """The console of one ``fnevents run``. :meth:`attach` the runtime before serving."""

    def __init__(self, recent: RecentEvents, token: str | None, interval: float = 1.0) -> None:
        self.recent = recent
        self._token = token or None
        self._runtime: Runtime | None = None
        self._graph: tuple[object, Topology, int] | None = None  # (catalog, graph, version)
        self._rates: Rates | None = None
        self.live = Live(self._snapshot, interval)
        self._own: web.AppRunner | None = None

    def attach(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._rates = Rates(lambda: read(runtime.metrics.registry))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/console", self._home)
        app.router.add_get("/console/", self._page)
        app.router.add_get("/console/static/{name}", self._static)
        app.router.add_get("/console/api/topology", self._topology)
        app.router.add_get("/console/api/loaded", self._loaded)
        app.router.add_get("/console/api/recent", self._recent)
        app.router.add_get("/console/api/deadletters", self._letters)
        app.router.add_post("/console/api/deadletters/replay", self._replay)
        app.router.add_get("/console/api/stream", self._stream)
        app.on_shutdown.append(self._closing)

    async def start_own(self, host: str, port: int) -> str:
        """Serve the console on ``host:port``, apart from the ops server; its URL."""
        app = web.Application()
        self.add_routes(app)
        self._own = web.AppRunner(app, access_log=None)
        await self._own.setup()
        await listen(self._own, host, port, "web console", "pass --console-port N (0: a free one)")
        bound_host, bound_port = self._own.addresses[0][:2]
        return f"http://{bound_host}:{bound_port}/console/"

    async def stop(self) -> None:
        await self.live.close()
        if self._own is not None:
            await self._own.cleanup()
            self._own = None

    async def _closing(self, _app: web.Application) -> None:
        await self.live.close()

    # -- what the page reads ------------------------------------------------------------

    def graph(self) -> tuple[Topology, int]:
        """The topology of the catalog now running; rebuilt after a reload."""
        assert self._runtime is not None, "attach() first"
        catalog = self._runtime.catalog
        if self._graph is None or self._graph[0] is not catalog:
            version = self._graph[2] + 1 if self._graph else 1
            self._graph = (catalog, build(catalog), version)
        return self._graph[1], self._graph[2]

    def _snapshot(self) -> dict[str, Any]:
        assert self._runtime is not None and self._rates is not None
        graph, version = self.graph()
        in_flight = {
            s.label: s.in_flight for trigger in self._runtime.triggers for s in trigger.subscribers
        }
        self._rates.tick()
        figures = self._rates.snapshot(graph, in_flight, self.recent.last_errors)
        return {"version": version, "recent": len(self.recent), **figures}

    async def _home(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    async def _page(self, _request: web.Request) -> web.Response:
        return await self._static_file("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        return await self._static_file(request.match_info["name"])

    async def _static_file(self, name: str) -> web.Response:
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = resources.files("events.app.console").joinpath("static", name).read_bytes()
        return web.Response(
            body=body, content_type=STATIC[name], headers={"Cache-Control": "no-cache"}
        )

    async def _topology(self, _request: web.Request) -> web.Response:
        graph, version = self.graph()
        return web.json_response(
            {"version": version, **graph.public(), "letters": sorted(graph.letters)},
            dumps=_dumps,
        )

    async def _loaded(self, _request: web.Request) -> web.Response:
        assert self._runtime is not None
        return web.json_response(loaded(self._runtime.catalog, self._runtime.running), dumps=_dumps)

    async def _recent(self, request: web.Request) -> web.Response:
        where = request.query.get("where") or None
        try:
            limit = min(200, max(1, int(request.query.get("limit", "50"))))
        except ValueError:
            raise web.HTTPBadRequest(text="limit: a number from 1 to 200") from None
        return web.json_response(
            {"where": where, "events": self.recent.latest(where, limit)}, dumps=_dumps
        )

    async def _letters(self, request: web.Request) -> web.Response:
        topic, where = self._letter_topic(request.query.get("topic", ""))
        assert self._runtime is not None
        return web.json_response(
            await letters.listing(self._runtime.catalog, where, topic), dumps=_dumps
        )

    async def _replay(self, request: web.Request) -> web.Response:
        self._authorize(request)
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='expected JSON: {"topic": "..."}') from None
        topic, where = self._letter_topic(str(body.get("topic", "")))
        assert self._runtime is not None
        try:
            report = await letters.replay(self._runtime.catalog, where, topic)
        except FnEventsError as exc:
            return web.json_response({"topic": topic, "error": str(exc)}, status=409)
        return web.json_response(report, dumps=_dumps)

    def _authorize(self, request: web.Request) -> None:
        if self._token is None:
            raise _unauthorized("replay is off: this console was started without --console-token")
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {self._token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise _unauthorized("replay needs the console token (Authorization: Bearer TOKEN)")

    def _letter_topic(self, topic: str) -> tuple[str, tuple[str, str]]:
        graph, _ = self.graph()
        if topic not in graph.letters:
            known = ", ".join(sorted(graph.letters)) or "none"
            raise web.HTTPNotFound(text=f"not a dead-letter topic: {topic!r}; known: {known}")
        return topic, graph.letters[topic]

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        async for snapshot in self.live.watch():
            try:
                await response.write(b"data: " + snapshot + b"\n\n")
            except (ConnectionResetError, RuntimeError):  # the page went away
                break
        return response


def _unauthorized(text: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text=text + "\n", headers={"WWW-Authenticate": 'Bearer realm="fnevents console"'}
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
