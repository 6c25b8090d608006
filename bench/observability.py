"""What tracing and the web console cost: the trigger pipeline without the hooks, with both
off (the default), with tracing on, and with the console on.

One in-memory bus; events published back to back on ``bench.in`` -> a real
``TriggerRunner`` with two subscribers: topic ``bench.out`` (read by a final
consumer) and an HTTP sink (an aiohttp server in this process answering 204). An
event counts once it reached both. Three variants, interleaved, best of REPEATS:

- **no hooks**: tracing off and ``SinkClient.post`` replaced by its body without
  the tracing hook (the only per-event hook on this path: the others are
  installed when a role is built, and only when tracing is on);
- **off**: the code as shipped, tracing off (the default);
- **console on**: tracing off, the web console's recent-events buffer recording every
  event and outcome (what ``run --console`` adds per event; the page's once-a-second read
  of the counters does not grow with the event rate);
- **tracing on**: tracing on, every span recorded by the SDK and handed to a
  ``BatchSpanProcessor`` whose exporter drops them (so no network is measured):
  a ``send`` span per publish, a ``process`` span per trigger delivery, a ``POST``
  span per sink attempt, W3C headers on each POST.

Rows: off / no hooks (1.0 = the hooks cost nothing), tracing on / off, console on / off.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence

from aiohttp import web

from bench.pipeline import make_events
from bench.report import Table, progress, sized
from events.bindings.http import to_binary, to_structured
from events.brokers.memory.bus import MemoryBus
from events.cloudevent import CloudEvent
from events.delivery.sinks import SinkClient, SinkReply
from events.manifests.extensions import DEFAULT_DELIVERY
from events.observability import tracing
from events.observability.console import Console
from events.observability.metrics import Metrics
from events.observability.recent import RecentEvents
from triggers.conditions import Condition
from triggers.runner import TriggerRunner
from triggers.subscriber import DeliveryContext, Subscriber

IN, OUT = "bench.in", "bench.out"
REPEATS = 3
TIMEOUT = 300.0
VARIANTS = ("no hooks", "off", "tracing on", "console on")


async def _post_without_hooks(
    self: SinkClient, url: str, event: CloudEvent, structured: bool = False, seconds=None
) -> SinkReply | None:
    """``SinkClient.post`` without its tracing hook (the reference)."""
    headers, body = to_structured(event) if structured else to_binary(event)
    return await self._attempt(url, headers, body, seconds)


def _tracing_on() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Sequence[object]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    tracing.install(provider)


class _Sink:
    """The HTTP sink: counts what it is sent."""

    async def start(self) -> str:
        self.count, self.done, self.target = 0, asyncio.Event(), 0
        app = web.Application()
        app.router.add_post("/", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}/"

    async def _take(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        if self.count >= self.target:
            self.done.set()
        return web.Response(status=204)

    async def stop(self) -> None:
        await self._runner.cleanup()


async def _throughput(variant: str, events: list[CloudEvent], sink: _Sink, url: str) -> float:
    original = SinkClient.post
    if variant == "no hooks":
        SinkClient.post = _post_without_hooks  # type: ignore[method-assign]
    elif variant == "tracing on":
        _tracing_on()
    try:
        bus, client = MemoryBus(), SinkClient()
        if tracing.enabled:
            tracing.trace_publish(bus)
        sink.count, sink.target = 0, len(events)
        sink.done.clear()
        arrived: list[float] = []
        out = await bus.subscribe(OUT, "bench-consumer")
        recent = RecentEvents() if variant == "console on" else None
        ctx = DeliveryContext(bus, client, Metrics(), Console(quiet=True), recent)
        common = {"condition": Condition("tick", ["tick"]), "policy": DEFAULT_DELIVERY}
        subscribers = [
            Subscriber("bench/t", 0, dead_letter_topic="bench-dl", topic=OUT, **common),
            Subscriber("bench/t", 1, dead_letter_topic="bench-dl", sink_url=url, **common),
        ]
        runner = TriggerRunner("bench/t", {"tick": IN}, subscribers, 60.0, "bench-t", ctx)
        await runner.start()

        async def consume() -> None:
            async for message in out:
                await message.ack()
                arrived.append(time.perf_counter())
                if len(arrived) >= len(events):
                    return

        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        for event in events:
            await bus.publish(IN, event)
        await asyncio.wait_for(asyncio.gather(consumer, sink.done.wait()), TIMEOUT)
        elapsed = time.perf_counter() - start
        await runner.stop()
        await bus.close()
        await client.close()
        return len(events) / elapsed
    finally:
        SinkClient.post = original  # type: ignore[method-assign]
        tracing.shutdown()


async def _run(quick: bool, n: int | None = None) -> list[Table]:
    n = n or sized(2_000 if quick else 10_000, 100)
    sink = _Sink()
    url = await sink.start()
    try:
        progress("observability: warm-up")
        for variant in VARIANTS:
            await _throughput(variant, make_events(min(n, 500), f"warm-{variant}"), sink, url)
        best = dict.fromkeys(VARIANTS, 0.0)
        events = make_events(n, "tp")
        gc.collect()
        gc.freeze()
        try:
            for rep in range(1, REPEATS + 1):
                for variant in VARIANTS:
                    progress(f"observability: {variant}, repeat {rep}/{REPEATS} (N={n:,})")
                    rate = await _throughput(variant, events, sink, url)
                    best[variant] = max(best[variant], rate)
                    gc.collect()
        finally:
            gc.unfreeze()
    finally:
        await sink.stop()
    hooks = Table("tracing and console off: the hooks' cost", "off", "no hooks")
    hooks.add("bus -> trigger -> topic + HTTP sink", "events/s", best["off"], best["no hooks"])
    hooks.notes.append(
        f"N={n:,} events, best of {REPEATS}, interleaved; ratio 1.0 = the hooks cost nothing"
    )
    on = Table("tracing on: recording every span", "tracing on", "off")
    on.add("bus -> trigger -> topic + HTTP sink", "events/s", best["tracing on"], best["off"])
    on.notes.append(
        "spans recorded by the SDK (always-on sampler) into a BatchSpanProcessor whose "
        "exporter drops them: 4 spans per event (send, process, send to topic, POST)"
    )
    console = Table("console on: recording recent events", "console on", "off")
    console.add("bus -> trigger -> topic + HTTP sink", "events/s", best["console on"], best["off"])
    console.notes.append(
        "the recent-events buffer (300 events, 16 outcomes each) records every event and "
        "each subscriber's outcome; its memory is bounded by those sizes"
    )
    return [hooks, on, console]


def run(quick: bool = False, n: int | None = None) -> list[Table]:
    return asyncio.run(_run(quick, n))
