"""Per-key ordering (the Trigger ``orderBy`` extension), over real HTTP.

The sink here holds every request until the test has seen enough of them in
flight at once, which proves parallelism by what arrives together rather than
by timing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiohttp import web

from events.bindings.http import from_http
from events.brokers.memory.bus import MemoryBus
from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from tests.bus.conftest import make_bus
from tests.sink import serve
from tests.triggers.harness import runner, subscriber


class GateSink:
    """Holds requests until ``open_at`` are in flight together, then answers all of them.

    Records, per key (the subject), the order requests were answered and the most
    requests of one key ever in flight together.
    """

    def __init__(self, open_at: int, failures: dict[str, int] | None = None) -> None:
        self.open_at = open_at
        self.failures = dict(failures or {})  # event id -> how many times to answer 503
        self.failed: list[str] = []
        self.gate = asyncio.Event()
        self.in_flight: dict[str, int] = defaultdict(int)
        self.most_per_key = 0
        self.most_overall = 0
        self.answered: dict[str, list[str]] = defaultdict(list)
        self.count = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> GateSink:
        self._runner, self.url = await serve("/", self._handle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        (event,) = from_http(request.headers, await request.read())
        key = event.subject or ""
        self.in_flight[key] += 1
        self.most_per_key = max(self.most_per_key, self.in_flight[key])
        self.most_overall = max(self.most_overall, sum(self.in_flight.values()))
        if self.most_overall >= self.open_at:
            self.gate.set()
        await self.gate.wait()
        await asyncio.sleep(0)  # let same-key successors pile up if ordering were broken
        self.in_flight[key] -= 1
        if self.failures.get(event.id, 0) > 0:
            self.failures[event.id] -= 1
            self.failed.append(event.id)
            return web.Response(status=503)
        self.answered[key].append(event.id)
        self.count += 1
        return web.Response(status=204)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.count < count:
                await asyncio.sleep(0.01)


def keyed(key: str, n: int) -> CloudEvent:
    return CloudEvent.create("test.keyed", "/tests", {"n": n}, id=f"{key}-{n}", subject=key)


async def publish_interleaved(
    bus: EventBus, keys: list[str], per_key: int, topic: str = "in"
) -> None:
    for n in range(per_key):
        for key in keys:
            await bus.publish(topic, keyed(key, n), key=key)


async def test_same_key_in_order_and_different_keys_in_parallel() -> None:
    keys = [f"car-{i}" for i in range(10)]
    async with GateSink(open_at=len(keys)) as sink:
        bus = MemoryBus()
        trig, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"}, order_by="subject")
        await trig.start()
        await publish_interleaved(bus, keys, per_key=5)
        await sink.wait_for(50)
        await trig.stop()
        await bus.close()
    assert sink.most_overall == len(keys), "every key had a request in flight at once"
    assert sink.most_per_key == 1, "never two requests of one key at once"
    for key in keys:
        assert sink.answered[key] == [f"{key}-{n}" for n in range(5)]


async def test_without_order_by_one_key_runs_in_parallel() -> None:
    async with GateSink(open_at=8) as sink:
        bus = MemoryBus()
        trig, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"})
        await trig.start()
        await publish_interleaved(bus, ["car-0"], per_key=8)
        await sink.wait_for(8)
        await trig.stop()
        await bus.close()
    assert sink.most_per_key == 8, "unordered: the same key is not serialized"


async def test_events_without_the_key_are_not_serialized() -> None:
    async with GateSink(open_at=6) as sink:
        bus = MemoryBus()
        trig, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"}, order_by="partitionkey")
        await trig.start()
        for n in range(6):  # subject set, partitionkey not: no ordering constraint
            await bus.publish("in", keyed("car-0", n))
        await sink.wait_for(6)
        await trig.stop()
        await bus.close()
    assert sink.most_per_key == 6


async def test_a_retried_event_still_comes_before_its_successor() -> None:
    async with GateSink(open_at=1, failures={"car-0-0": 2}) as sink:
        bus = MemoryBus()
        trig, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": "in"}, order_by="subject")
        await trig.start()
        await publish_interleaved(bus, ["car-0"], per_key=3)
        await sink.wait_for(3)
        await trig.stop()
        await bus.close()
    assert sink.failed == ["car-0-0", "car-0-0"], "the first event failed twice, then succeeded"
    assert sink.answered["car-0"] == ["car-0-0", "car-0-1", "car-0-2"]
    assert sink.most_per_key == 1


@pytest.mark.kafka
async def test_on_kafka_keys_sharing_a_partition_still_run_in_parallel(kafka_broker) -> None:
    """Kafka orders per partition; one partition must not mean one delivery at a time."""
    keys = [f"car-{i}" for i in range(6)]
    topic = f"ordering-{uuid.uuid4().hex[:10]}"
    async with GateSink(open_at=len(keys)) as sink, make_bus("kafka", kafka_broker) as bus:
        trig, _ = runner(bus, [subscriber(sink_url=sink.url)], {"a": topic}, order_by="subject")
        await trig.start()
        await publish_interleaved(bus, keys, per_key=10, topic=topic)
        await sink.wait_for(60, timeout=30)
        await trig.stop()
    assert sink.most_overall == len(keys)
    assert sink.most_per_key == 1
    for key in keys:
        assert sink.answered[key] == [f"{key}-{n}" for n in range(10)]
