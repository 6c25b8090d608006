"""kill -9 of ``fnevents run`` twice while its Trigger delivers to a real HTTP sink, on
every durable backend: every published event reaches the sink, and the duplicates that
at least once allows are counted and printed (``pytest -s`` shows the figures).

What a kill leaves behind: deliveries the sink took whose ack had not landed (delivered
again: duplicates) and messages read but not delivered (Redis: pending with the dead
member, claimed after processingTimeout; Kafka: uncommitted, read again by the member
that takes the partition after the dead one's session times out; JetStream: redelivered
after ackWait).
"""

from __future__ import annotations

import pytest

from tests.e2e import processes
from tests.faults import harness
from tests.sink import RecordingSink, Reply

pytestmark = pytest.mark.e2e

TOTAL = 2000
#: 20 ms per event at the sink and 8 in flight (about 400/s): the kills land mid-stream
SINK_DELAY = 0.02
MAX_IN_FLIGHT = 8
KILL_AT = (0.25, 0.6)


@pytest.mark.parametrize(
    ("backend", "fixture"),
    [
        pytest.param("redis", "redis_broker", marks=pytest.mark.redis),
        pytest.param("kafka", "kafka_broker", marks=pytest.mark.kafka),
        pytest.param("jetstream", "nats_broker", marks=pytest.mark.jetstream),
    ],
)
async def test_kill_9_twice_mid_stream_loses_nothing(backend, fixture, request, tmp_path) -> None:
    broker = request.getfixturevalue(fixture)
    setup = harness.BUSES[backend]
    async with RecordingSink(lambda n: Reply(delay=SINK_DELAY)) as sink:
        app = processes.trigger_on(
            tmp_path, setup.manifest(broker.address), sink.url, max_in_flight=MAX_IN_FLIGHT
        )
        async with setup.bus(broker.address) as bus:
            ids = [f"kill-{n}" for n in range(TOTAL)]
            accepted = await processes.publish_all(bus, app.input_topic, ids)
        trigger = harness.TriggerProcess(app, tmp_path / "fnevents.log")
        at_kills = []
        try:
            await trigger.start()
            for fraction in KILL_AT:
                await harness.until_accepted(trigger, sink, int(TOTAL * fraction))
                await trigger.kill()
                at_kills.append(len({e.id for e in sink.accepted}))
                await trigger.start()
            await harness.settle(trigger, sink, lambda: accepted)
        finally:
            trigger.stop()
    tally = harness.Tally.of(accepted, sink)
    assert all(n < TOTAL for n in at_kills), f"each kill mid-stream: {at_kills}"
    assert not tally.lost, f"{tally.line(backend)}; lost e.g. {sorted(tally.lost)[:5]}"
    assert set(tally.received) == accepted, "only what was published arrives"
    print(tally.line(f"{backend} kill -9 x2 (at {at_kills} of {TOTAL})"))
