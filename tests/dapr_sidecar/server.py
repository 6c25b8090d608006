"""Test double (not Dapr): run the sidecar double in a thread of its own.

:func:`running` starts a thread with its own event loop, on free loopback ports:

- the backing buses, made by the given factories inside that loop, since
  asyncio clients belong to the loop that made them;
- the gRPC server;
- the HTTP health server.

It yields a :class:`RunningSidecar` with the addresses, and on exit stops
everything and joins the thread. A separate loop keeps the double serving while
a test's loop is busy, or blocked by the Dapr SDK's synchronous health probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import grpc
from aiohttp import web
from dapr.proto.runtime.v1.dapr_pb2_grpc import add_DaprServicer_to_server

from events.brokers.memory.bus import MemoryBus
from events.bus.contract import EventBus
from tests.dapr_sidecar.servicer import DEFAULT_IN_FLIGHT, DaprDouble

READY_TIMEOUT = 20.0
BusFactory = Callable[[], EventBus]


@dataclass(frozen=True)
class RunningSidecar:
    grpc_address: str
    http_port: int
    pubsub_name: str
    app_id: str
    api_token: str | None
    #: The servicer itself, for what the test double saw (``tokens_seen``) and its knobs.
    servicer: DaprDouble

    @property
    def grpc_port(self) -> int:
        return int(self.grpc_address.rsplit(":", 1)[1])

    def env(self) -> dict[str, str]:
        """What ``dapr run`` gives an app next to this sidecar."""
        env = {
            "DAPR_RUNTIME_HOST": "127.0.0.1",
            "DAPR_GRPC_PORT": str(self.grpc_port),
            "DAPR_HTTP_PORT": str(self.http_port),
        }
        if self.api_token:
            env["DAPR_API_TOKEN"] = self.api_token
        return env


@contextlib.contextmanager
def running(
    components: Mapping[str, BusFactory] | None = None,
    *,
    api_token: str | None = None,
    app_id: str = "fnevents-tests",
    max_in_flight: int = DEFAULT_IN_FLIGHT,
) -> Iterator[RunningSidecar]:
    """A running sidecar double; ``components`` maps pub/sub names to bus factories."""
    thread = _SidecarThread(
        dict(components or {"pubsub": MemoryBus}), api_token, app_id, max_in_flight
    )
    thread.start()
    try:
        yield thread.wait_ready()
    finally:
        thread.stop()


class _SidecarThread(threading.Thread):
    def __init__(
        self,
        factories: dict[str, BusFactory],
        api_token: str | None,
        app_id: str,
        max_in_flight: int,
    ) -> None:
        super().__init__(name="dapr-sidecar-double", daemon=True)
        self._factories = factories
        self._api_token = api_token
        self._app_id = app_id
        self._max_in_flight = max_in_flight
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._handle: RunningSidecar | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._error = exc
        finally:
            self._ready.set()

    def wait_ready(self) -> RunningSidecar:
        if not self._ready.wait(READY_TIMEOUT):
            raise RuntimeError(f"the Dapr sidecar double did not start in {READY_TIMEOUT}s")
        if self._handle is None:
            raise RuntimeError(f"the Dapr sidecar double failed to start: {self._error!r}")
        return self._handle

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout=10)
        if self._error is not None and self._handle is not None:
            raise RuntimeError("the Dapr sidecar double failed") from self._error

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        buses: dict[str, EventBus] = {}
        server = runner = None
        try:
            for name, factory in self._factories.items():
                buses[name] = factory()
                await buses[name].start()
            servicer = DaprDouble(buses, self._app_id, self._api_token, self._max_in_flight)
            server = grpc.aio.server()
            add_DaprServicer_to_server(servicer, server)
            grpc_port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            runner = web.AppRunner(_health_app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            http_port = runner.addresses[0][1]
            self._handle = RunningSidecar(
                grpc_address=f"127.0.0.1:{grpc_port}",
                http_port=http_port,
                pubsub_name=next(iter(buses)),
                app_id=self._app_id,
                api_token=self._api_token,
                servicer=servicer,
            )
            self._ready.set()
            await self._stopping.wait()
        finally:
            if server is not None:
                await server.stop(grace=0.5)
            if runner is not None:
                await runner.cleanup()
            for bus in buses.values():
                await bus.close()


def _health_app() -> web.Application:
    """Dapr's health endpoints, which the official SDK probes before it connects."""

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/v1.0/healthz", healthy)
    app.router.add_get("/v1.0/healthz/outbound", healthy)
    return app
