"""The optional backlog query (events.bus.backlog) on every backend: what waits on the
broker for a group, unread plus read and not yet acked. MQTT and the Dapr sidecar
cannot tell, and say so by not offering it."""

from __future__ import annotations

from events.bus.backlog import backlog_of
from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from tests.helpers import receive, until

#: A Kafka group's acks are committed every commitInterval (1 s by default).
SETTLE = 10.0
NO_BACKLOG = {"pubsub.mqtt3", "dapr"}


async def test_the_backlog_counts_what_waits_for_the_group(bus: EventBus, topic: str) -> None:
    query = backlog_of(bus)
    if bus.component_type in NO_BACKLOG:
        assert query is None, "a bus that cannot tell must not pretend to"
        return
    assert query is not None
    sub = await bus.subscribe(topic, "g")
    for n in range(5):
        await bus.publish(topic, CloudEvent.create("t", "/s", {"n": n}, id=f"b-{n}"))
    await until(lambda: _is(query, topic, 5), "the backlog is 5", SETTLE)
    for _ in range(3):
        await (await receive(sub)).ack()
    await until(lambda: _is(query, topic, 2), "the backlog is 2 after 3 acks", SETTLE)
    for _ in range(2):
        await (await receive(sub)).ack()
    await until(lambda: _is(query, topic, 0), "the backlog is 0", SETTLE)
    await sub.close()


async def _is(query, topic: str, expected: int) -> bool:
    return await query.backlog(topic, "g") == expected
