"""HTTP ingest: requests/s through fnevents' HTTP source against a bare aiohttp server.

Ours: an ``http`` EventSource in a real Runtime with the embedded bus, and a consumer
acking every event from the bus, so a 200 means the bus holds the event. Reference:
an aiohttp server on the same machine whose handler reads the body and answers 200,
measured in the same run with the same client: one keep-alive ``aiohttp`` session,
``CONCURRENCY`` requests in flight, the same JSON bodies. Latency is each request's
time from send to answer read, under that load (p50/p99 of the best run's requests).
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import aiohttp
import orjson
from aiohttp import web

from bench.report import Table, progress, sized
from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.observability.console import Console
from tests.brokers.servers import free_port, wait_until_listening
from tests.manifests import documents

CONCURRENCY = 32
MANIFESTS = (
    documents.EMBEDDED_BUS
    + """\
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: ingest}}
spec:
  eventBus: default
  http:
    readings: {{host: 127.0.0.1, port: {port}, path: /readings}}
"""
)


def _bodies(n: int) -> list[bytes]:
    return [
        orjson.dumps({"vehicleId": f"v{i % 50}", "speed": 80.0 + i % 60, "seq": i})
        for i in range(n)
    ]


class Run(NamedTuple):
    rate: float  # requests/s
    latency: list[float]  # seconds per request, sorted


async def _drive(url: str, bodies: list[bytes]) -> Run:
    """Post every body with CONCURRENCY in flight on one keep-alive session."""
    latency: list[float] = []
    clock = time.perf_counter
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as s:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                sent = clock()
                async with s.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")
                latency.append(clock() - sent)

        start = clock()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        rate = len(bodies) / (clock() - start)
        return Run(rate, sorted(latency))


async def _reference(bodies: list[bytes]) -> Run:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/readings", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return await _drive(f"http://127.0.0.1:{port}/readings", bodies)
    finally:
        await runner.cleanup()


async def _ours(bodies: list[bytes]) -> Run:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingest.yaml"
        path.write_text(MANIFESTS.format(port=port))
        runtime = Runtime(load_catalog([str(path)], []), Console(stream=io.StringIO()))
        await runtime.start()
        bus = next(iter(runtime.buses.values()))
        subscription = await bus.subscribe("default-ingest-readings", "bench")

        async def consume() -> None:
            for _ in range(len(bodies)):
                await (await anext(subscription)).ack()

        consumer = asyncio.create_task(consume())
        try:
            await wait_until_listening(port)
            run = await _drive(f"http://127.0.0.1:{port}/readings", bodies)
            await asyncio.wait_for(consumer, 30)
            return run
        finally:
            await runtime.stop(drain_timeout=1)


async def _run(quick: bool) -> list[Table]:
    n, repeats = (2_000, 1) if quick else (10_000, 3)
    n = sized(n, 100)
    bodies = _bodies(n)
    ours = reference = Run(0.0, [])
    for repeat in range(1, repeats + 1):
        progress(f"http_ingest: repeat {repeat}/{repeats} (N={n:,})")
        reference = max(reference, await _reference(bodies), key=lambda run: run.rate)
        ours = max(ours, await _ours(bodies), key=lambda run: run.rate)
    table = Table(
        f"http_ingest: POST JSON -> HTTP source -> embedded bus vs a bare aiohttp server "
        f"(N={n:,}, ~60 B bodies; ratio = ours / bare server)",
        "fnevents",
        "bare aiohttp",
    )
    table.add(
        "requests/s, keep-alive client (higher is better)", "req/s", ours.rate, reference.rate
    )
    table.add_latency("under that load", ours.latency, reference.latency, unit="us")
    table.notes.append(
        f"best of {repeats} by throughput, interleaved (latency from that run); one "
        f"aiohttp keep-alive session, {CONCURRENCY} "
        "requests in flight; ours answers 200 only once the bus holds the event, and a "
        "consumer acks every event"
    )
    return [table]


def run(quick: bool = False) -> list[Table]:
    return asyncio.run(_run(quick))
