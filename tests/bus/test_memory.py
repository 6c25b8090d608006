"""What the in-memory backend adds to the contract: bounded memory."""

from __future__ import annotations

import asyncio

import pytest

from events.brokers.memory.bus import MemoryBus
from events.cloudevent import CloudEvent
from tests.helpers import nothing_within

pytestmark = pytest.mark.memory


async def test_publish_waits_while_a_group_is_full() -> None:
    bus = MemoryBus(max_pending=3)
    sub = await bus.subscribe("t", "g")
    for n in range(3):
        await bus.publish("t", CloudEvent.create("t", "/s", {"n": n}))
    blocked = asyncio.create_task(bus.publish("t", CloudEvent.create("t", "/s", {"n": 3})))
    await asyncio.sleep(0.1)
    assert not blocked.done(), "the fourth publish must wait for space"
    await (await anext(sub)).ack()
    await asyncio.wait_for(blocked, 1)
    await bus.close()


async def test_a_topic_without_groups_keeps_nothing() -> None:
    bus = MemoryBus()
    await bus.publish("t", CloudEvent.create("t", "/s", {"n": 0}))
    sub = await bus.subscribe("t", "late")
    assert await nothing_within(sub, 0.2)
    await bus.close()
