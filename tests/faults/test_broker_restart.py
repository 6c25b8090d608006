"""Broker restarts (SIGTERM, then started again on the same port and data) while a
Trigger lags behind its input, on the brokers that keep their data across a restart:
Redis with the append-only file on, NATS JetStream with its file store.

Two publishers: one that published everything before the trigger started (the trigger
lags by the whole stream), and one that does not wait (a publish per event, many at
once, each retried through the outage until the broker holds it), publishing while
the broker restarts. Each counts the ids the broker accepted against those the sink
received: nothing lost (asserted), duplicates printed. A trigger that stops making
progress with work pending fails the test at once with /readyz's reason (see
``harness.TriggerProcess.check``).
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from redis.asyncio import Redis

from events.bus.resilient import publish_until_accepted
from events.cloudevent import CloudEvent
from tests.brokers import servers
from tests.e2e import processes
from tests.faults import harness
from tests.sink import RecordingSink, Reply

pytestmark = pytest.mark.e2e

TOTAL = 2000
SINK_DELAY = 0.02  # 8 in flight: about 400 events/s, slower than either publisher
MAX_IN_FLIGHT = 8
RESTART_AT = (0.25, 0.6)
#: events published at once by the publisher that does not wait
WAVE = 50

DURABLE = [
    pytest.param("redis", servers.durable_redis, marks=pytest.mark.redis, id="redis-aof"),
    pytest.param("jetstream", servers.durable_nats, marks=pytest.mark.jetstream, id="jetstream"),
]


@pytest.mark.parametrize(("backend", "server"), DURABLE)
async def test_broker_restarts_while_the_trigger_lags_lose_nothing(
    backend, server, tmp_path
) -> None:
    setup = harness.BUSES[backend]
    with servers.running(server()) as broker:
        async with RecordingSink(lambda n: Reply(delay=SINK_DELAY)) as sink:
            app = processes.trigger_on(
                tmp_path, setup.manifest(broker.address), sink.url, max_in_flight=MAX_IN_FLIGHT
            )
            async with setup.bus(broker.address) as bus:
                ids = [f"lag-{n}" for n in range(TOTAL)]
                accepted = await processes.publish_all(bus, app.input_topic, ids)
            trigger = harness.TriggerProcess(app, tmp_path / "fnevents.log")
            at_restarts = []
            try:
                await trigger.start()
                for fraction in RESTART_AT:
                    await harness.until_accepted(trigger, sink, int(TOTAL * fraction))
                    at_restarts.append(len({e.id for e in sink.accepted}))
                    await asyncio.to_thread(broker.restart)
                await harness.settle(trigger, sink, lambda: accepted)
            finally:
                trigger.stop()
    tally = harness.Tally.of(accepted, sink)
    assert all(n < TOTAL for n in at_restarts), f"each restart mid-stream: {at_restarts}"
    assert not tally.lost, f"{tally.line(backend)}; lost e.g. {sorted(tally.lost)[:5]}"
    assert set(tally.received) == accepted
    print(tally.line(f"{backend} restart x2 while lagging (at {at_restarts} of {TOTAL})"))


@pytest.mark.parametrize(("backend", "server"), DURABLE)
async def test_a_restart_under_a_publisher_that_does_not_wait_loses_nothing(
    backend, server, tmp_path
) -> None:
    setup = harness.BUSES[backend]
    notes: list[str] = []
    with servers.running(server()) as broker:
        async with RecordingSink(lambda n: Reply(delay=SINK_DELAY)) as sink:
            app = processes.trigger_on(
                tmp_path, setup.manifest(broker.address), sink.url, max_in_flight=MAX_IN_FLIGHT
            )
            trigger = harness.TriggerProcess(app, tmp_path / "fnevents.log")
            accepted: set[str] = set()
            at_restarts = []

            async def publish(bus, n: int) -> None:
                event = CloudEvent.create("dev.test.tick", "/e2e", {"n": n}, id=f"nowait-{n}")
                await publish_until_accepted(bus, app.input_topic, event, None, notes.append)
                accepted.add(event.id)

            async def publisher(bus) -> None:
                for start in range(0, TOTAL, WAVE):  # many at once, none waited for alone
                    await asyncio.gather(*(publish(bus, n) for n in range(start, start + WAVE)))
                    await asyncio.sleep(0.01)

            try:
                async with setup.bus(broker.address) as bus:
                    await trigger.start()
                    publishing = asyncio.create_task(publisher(bus))
                    for fraction in RESTART_AT:
                        async with asyncio.timeout(harness.DELIVERY_TIMEOUT):
                            while len(accepted) < TOTAL * fraction:
                                await trigger.check()
                                await asyncio.sleep(0.005)
                        at_restarts.append(len(accepted))
                        await asyncio.to_thread(broker.restart)  # publishes in flight
                    async with asyncio.timeout(harness.DELIVERY_TIMEOUT):
                        await publishing
                await harness.settle(trigger, sink, lambda: accepted)
            finally:
                trigger.stop()
        copies = await _stored_copies(backend, broker, app.input_topic)
    tally = harness.Tally.of(accepted, sink)
    assert len(accepted) == TOTAL, "every publish was accepted in the end"
    assert all(n < TOTAL for n in at_restarts), f"each restart mid-publishing: {at_restarts}"
    assert any("cannot publish" in note for note in notes), "the restarts reached the publisher"
    assert not tally.lost, f"{tally.line(backend)}; lost e.g. {sorted(tally.lost)[:5]}"
    assert set(tally.received) == accepted
    stored = f"; {copies} stored twice by the publisher's retries" if copies is not None else ""
    print(tally.line(f"{backend} restart x2 under a publisher that does not wait") + stored)


async def _stored_copies(backend: str, broker, topic: str) -> int | None:
    """Redis only: entries on the stream beyond one per event id (an XADD whose answer the
    outage cut off and that was retried is stored twice; JetStream drops such a second
    copy by its Nats-Msg-Id)."""
    if backend != "redis":
        return None
    raw = Redis(host=broker.host, port=broker.port)
    try:
        entries = await raw.xrange(topic)
    finally:
        await raw.aclose()
    ids = [orjson.loads(fields[b"data"])["id"] for _, fields in entries]
    return len(ids) - len(set(ids))
