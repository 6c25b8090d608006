"""Trigger -> HTTP sink against a raw aiohttp client, in the same run, to the same server.

Function server: an aiohttp app in its own process (so its CPU does not share our
event loop) that reads each request's body and answers 204.

ours: publish to ``bench.in`` on a :class:`MemoryBus` -> a real
:class:`triggers.runner.TriggerRunner` (one subscriber whose sink is the function
server, ``maxInFlight`` = ``CONCURRENCY``; real SinkClient, delivery policy,
Metrics; a quiet Console that notes when each delivery completes) -> POST in
CloudEvents binary mode -> 204 -> ack. Two trigger windows (how many bus
messages the trigger holds at once) are measured: ``2 * CONCURRENCY``, so the
next event already waits at the subscriber's limit when a POST completes; and a
window equal to ``maxInFlight`` (64 each, what the runtime gives a trigger: its
largest ``maxInFlight``), where every
completed POST first goes back through ack, slot release and the bus read
before the next one starts, which leaves the sink under-used for those hops.

reference (raw client): ``CONCURRENCY`` workers on one keep-alive
``aiohttp.ClientSession`` take events from a queue, encode each in binary mode
with the same codec (``to_binary``, as any client must) and POST it to the same
server. Ours POSTs with fnevents' own HTTP/1.1 client
(:mod:`events.delivery.http_client`), which costs much less per request than
aiohttp's, so ``ours / raw`` can exceed 1. A third row compares against that same
client driven by the same raw workers: there the ratio is the cost of the bus hop,
the trigger (condition, task per message, acks), the delivery policy (per-attempt
timeout), response classification, metrics and console.

Throughput: N events handed over back to back (published, or queued); events/s
from the first hand-over to the last completed POST; best of ``REPEATS``,
interleaved. Latency: events handed over at a fixed ``RATE`` (so neither side is
saturated); latency is the completed POST minus the hand-over, by event id; the
first 5 % are dropped as warm-up.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

import aiohttp

from bench.pipeline import make_events
from bench.report import Table, progress, sized
from bench.sink_server import sink_server
from events.bindings.http import to_binary
from events.brokers.memory.bus import MemoryBus
from events.cloudevent import CloudEvent
from events.delivery.http_client import HttpClient
from events.delivery.sinks import SinkClient
from events.manifests.extensions import DEFAULT_DELIVERY
from events.observability.console import Console
from events.observability.metrics import Metrics
from triggers.conditions import Condition
from triggers.runner import TriggerRunner
from triggers.subscriber import DeliveryContext, Subscriber

IN = "bench.in"
CONCURRENCY = 64
REPEATS = 3
RATE = 1_000  # events/s for the latency measurement
TIMEOUT = 120.0

Clock = Callable[[], float]
Run = Callable[[str, list[CloudEvent], float | None], Awaitable[tuple[dict, dict]]]


class Arrivals(Console):
    """A quiet console that notes when each delivery completed, by event id, and sets
    ``done`` once ``expected`` events have been delivered."""

    def __init__(self, arrivals: dict[str, float], expected: int) -> None:
        super().__init__(quiet=True)
        self.arrivals, self.expected = arrivals, expected
        self.done = asyncio.Event()

    def delivery(self, outcome: str, where: str, target: str, event: CloudEvent, *rest) -> None:
        if outcome == "delivered":
            self.arrivals[event.id] = time.perf_counter()
            if len(self.arrivals) >= self.expected:
                self.done.set()


async def _hand_over(
    events: list[CloudEvent], rate: float | None, put: Callable[[CloudEvent], Awaitable[None]]
) -> dict[str, float]:
    """Hand every event over (back to back, or paced at ``rate``); returns when each went."""
    sent: dict[str, float] = {}
    clock = time.perf_counter
    start = clock()
    for i, event in enumerate(events):
        if rate is not None:
            delay = start + i / rate - clock()
            if delay > 0:
                await asyncio.sleep(delay)
        sent[event.id] = clock()
        await put(event)
    return sent


async def _ours(url: str, events: list[CloudEvent], rate: float | None) -> tuple[dict, dict]:
    return await _trigger(url, events, rate, CONCURRENCY)


async def _ours_wide_window(
    url: str, events: list[CloudEvent], rate: float | None
) -> tuple[dict, dict]:
    return await _trigger(url, events, rate, 2 * CONCURRENCY)


async def _trigger(
    url: str, events: list[CloudEvent], rate: float | None, window: int
) -> tuple[dict, dict]:
    bus, sinks, arrivals = MemoryBus(), SinkClient(), {}
    console = Arrivals(arrivals, len(events))
    ctx = DeliveryContext(bus, sinks, Metrics(), console)
    subscriber = Subscriber(
        trigger="bench/http",
        index=0,
        condition=Condition("tick", ["tick"]),
        policy=DEFAULT_DELIVERY,
        dead_letter_topic="bench-http-deadletter",
        sink_url=url,
        max_in_flight=CONCURRENCY,
    )
    runner = TriggerRunner(
        "bench/http", {"tick": IN}, [subscriber], 60.0, "bench-http", ctx, window
    )
    await runner.start()
    sent = await _hand_over(events, rate, lambda e: bus.publish(IN, e))
    await asyncio.wait_for(console.done.wait(), TIMEOUT)
    await runner.stop()
    await bus.close()
    await sinks.close()
    return sent, arrivals


async def _raw(url: str, events: list[CloudEvent], rate: float | None) -> tuple[dict, dict]:
    connector = aiohttp.TCPConnector(limit_per_host=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(event: CloudEvent) -> None:
            headers, body = to_binary(event)
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 204:
                    raise RuntimeError(f"{url} answered {response.status}")

        return await _workers(events, rate, post)


async def _raw_same_client(
    url: str, events: list[CloudEvent], rate: float | None
) -> tuple[dict, dict]:
    client = HttpClient(CONCURRENCY)

    async def post(event: CloudEvent) -> None:
        headers, body = to_binary(event)
        answer = await client.post(url, headers, body)
        if answer.status != 204:
            raise RuntimeError(f"{url} answered {answer.status}")

    try:
        return await _workers(events, rate, post)
    finally:
        await client.close()


async def _workers(
    events: list[CloudEvent], rate: float | None, post: Callable[[CloudEvent], Awaitable[None]]
) -> tuple[dict, dict]:
    """``CONCURRENCY`` workers taking events from a queue and posting each."""
    queue: asyncio.Queue[CloudEvent | None] = asyncio.Queue()
    arrivals: dict[str, float] = {}

    async def worker() -> None:
        while (event := await queue.get()) is not None:
            await post(event)
            arrivals[event.id] = time.perf_counter()

    workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    sent = await _hand_over(events, rate, queue.put)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*workers), TIMEOUT)
    return sent, arrivals


async def _frozen(run: Run, url: str, events: list[CloudEvent], rate: float | None):
    """One run with the events frozen out of the collector's reach (as in ``pipeline``), so
    full collections cost the same whatever the run keeps alive."""
    gc.collect()
    gc.freeze()
    try:
        return await run(url, events, rate)
    finally:
        gc.unfreeze()


async def _throughput(run: Run, url: str, events: list[CloudEvent]) -> float:
    sent, arrivals = await _frozen(run, url, events, None)
    return len(events) / (max(arrivals.values()) - min(sent.values()))


async def _latencies(run: Run, url: str, events: list[CloudEvent]) -> list[float]:
    sent, arrivals = await _frozen(run, url, events, RATE)
    skip = len(events) // 20
    return sorted(arrivals[e.id] - sent[e.id] for e in events[skip:])


async def _measure(url: str, quick: bool) -> Table:
    n = sized(3_000 if quick else 10_000, 200)
    progress("trigger_http: warm-up")
    warm = make_events(1_000, "warm")
    runs = (_raw, _ours, _ours_wide_window, _raw_same_client)
    for run in runs:
        await _throughput(run, url, warm)
    events = make_events(n, "tp")
    best = dict.fromkeys(runs, 0.0)
    for rep in range(1, REPEATS + 1):
        progress(f"trigger_http: throughput repeat {rep}/{REPEATS} (N={n:,})")
        for run in runs:
            best[run] = max(best[run], await _throughput(run, url, events))
    count = sized(int(RATE * (1.0 if quick else 3.0)), 50)
    latency = {}
    for run in (_raw, _ours):
        progress(f"trigger_http: latency, {run.__name__[1:]}, {count:,} events at {RATE:,} ev/s")
        latency[run] = await _latencies(run, url, make_events(count, f"lat{run.__name__}"))
    table = Table(
        f"trigger_http: in-memory bus -> trigger -> HTTP sink (204) vs a raw aiohttp client "
        f"(N={n:,}, {CONCURRENCY} in flight, binary mode; ratio = ours / raw)",
        "trigger",
        "raw client",
    )
    window = CONCURRENCY
    table.add(
        f"throughput, window {window} = maxInFlight, the runtime's default (higher is better)",
        "events/s",
        best[_ours],
        best[_raw],
    )
    table.add(
        f"throughput, window {2 * window} = 2 x maxInFlight (higher is better)",
        "events/s",
        best[_ours_wide_window],
        best[_raw],
    )
    table.add(
        f"throughput, window {window}, vs the same HTTP client as ours, raw (higher is better)",
        "events/s",
        best[_ours],
        best[_raw_same_client],
    )
    table.add_latency(f"at {RATE:,} ev/s, window {window}", latency[_ours], latency[_raw])
    table.notes.append(
        f"throughput: best of {REPEATS}, interleaved, first hand-over to last completed POST; "
        f"latency: {count:,} events paced at {RATE:,} ev/s, hand-over to completed POST, "
        "first 5 % dropped; both encode with to_binary per request; the pre-built events are "
        "frozen out of the collector's reach (gc.freeze, as in pipeline); the function "
        "server runs in its own process; ours POSTs with fnevents' HTTP client "
        "(events/delivery/http_client.py), raw with aiohttp unless the row says otherwise"
    )
    return table


async def _run(quick: bool) -> list[Table]:
    async with sink_server() as url:
        return [await _measure(url, quick)]


def run(quick: bool = False) -> list[Table]:
    return asyncio.run(_run(quick))
