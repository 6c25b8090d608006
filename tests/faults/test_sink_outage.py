"""A sink outage mid-stream (it answers 503 for a few seconds) while a Trigger on Redis
delivers to it: the subscriber's retries carry every event over the outage, none goes
to a dead letter, nothing is lost; the duplicates are printed."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.e2e import processes
from tests.faults import harness
from tests.sink import RecordingSink, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TOTAL = 2000
SINK_DELAY = 0.01
MAX_IN_FLIGHT = 8
OUTAGE = 3.0
#: retries 0.1 s apart, doubling: about 25 s in all, far more than the outage
RETRY, BACKOFF = 8, "100ms"


async def test_a_sink_outage_mid_stream_loses_nothing(redis_broker, tmp_path) -> None:
    setup = harness.BUSES["redis"]
    down = asyncio.Event()

    def reply(_n: int) -> Reply:
        return (
            Reply(status=503, body="down for maintenance")
            if down.is_set()
            else Reply(delay=SINK_DELAY)
        )

    async with RecordingSink(reply) as sink:
        app = processes.trigger_on(
            tmp_path,
            setup.manifest(redis_broker.address),
            sink.url,
            retry=RETRY,
            backoff=BACKOFF,
            max_in_flight=MAX_IN_FLIGHT,
        )
        async with setup.bus(redis_broker.address) as bus:
            ids = [f"outage-{n}" for n in range(TOTAL)]
            accepted = await processes.publish_all(bus, app.input_topic, ids)
        trigger = harness.TriggerProcess(app, tmp_path / "fnevents.log")
        try:
            await trigger.start()
            await harness.until_accepted(trigger, sink, TOTAL // 4)
            down.set()
            await asyncio.sleep(OUTAGE)
            down.clear()
            await harness.settle(trigger, sink, lambda: accepted)
        finally:
            trigger.stop()
    raw = Redis(host=redis_broker.host, port=redis_broker.port)
    try:
        letters = await raw.xlen(app.dead_letter_topic)
    finally:
        await raw.aclose()
    tally = harness.Tally.of(accepted, sink)
    assert sink.failures_served > 0, "the outage was seen"
    assert letters == 0, f"{letters} event(s) went to {app.dead_letter_topic}"
    assert not tally.lost, f"{tally.line('sink outage')}; lost e.g. {sorted(tally.lost)[:5]}"
    assert set(tally.received) == accepted
    print(tally.line(f"redis sink outage {OUTAGE:g}s ({sink.failures_served} answers were 503)"))
