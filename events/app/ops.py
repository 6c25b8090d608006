"""The operations endpoint: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from events.observability.metrics import Metrics
from events.serving import listen


class OpsServer:
    """``not_ready`` says why the process is not ready (None when it is): ``/readyz``
    answers 503 with that reason as its body, else 200 ``ready``. Each of ``routes``
    adds its own routes to the application (the web console, when it shares this port)."""

    def __init__(
        self,
        metrics: Metrics,
        not_ready: Callable[[], str | None],
        host: str,
        port: int,
        routes: Sequence[Callable[[web.Application], None]] = (),
    ) -> None:
        self._routes = routes
        self._metrics = metrics
        self._not_ready = not_ready
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        for add in self._routes:
            add(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        fix = "pass --port N or --port 0 (a free port)"
        await listen(self._runner, self._host, self._port, "health and metrics", fix)
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        reason = self._not_ready()
        if reason is None:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"{reason}\n")

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
