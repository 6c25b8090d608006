"""The EventBus contract, as executable tests. Every backend runs all of them."""

from __future__ import annotations

import asyncio
import time

import pytest

from events.bus.contract import EventBus
from events.bus.poison import bounded
from events.cloudevent import CloudEvent
from events.errors import BusClosed
from tests.bus.capabilities import ATTEMPTS_SURVIVE_MEMBERS, ORDERED_KEYS, guarantees, require
from tests.helpers import RECEIVE_TIMEOUT, nothing_within, receive, receive_all

#: Long enough for the slowest redelivery mechanism under test settings (a Kafka rebalance).
REDELIVERY_TIMEOUT = 20.0


def make_event(n: int, **extra) -> CloudEvent:
    return CloudEvent.create("test.conformance", "/tests/bus", {"n": n}, id=f"ev-{n}", **extra)


async def test_publish_then_receive_keeps_the_event_whole(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    event = make_event(1, subject="vehicle-7", partitionkey="vehicle-7", sequence=3)
    await bus.publish(topic, event, key="vehicle-7")
    message = await receive(sub)
    assert message.event == event
    assert message.event.extensions == {"partitionkey": "vehicle-7", "sequence": 3}
    assert message.topic == topic
    assert message.attempt == 1
    await message.ack()
    await sub.close()


async def test_every_group_gets_every_event(bus: EventBus, topic: str) -> None:
    first, second = await bus.subscribe(topic, "group-a"), await bus.subscribe(topic, "group-b")
    for n in range(20):
        await bus.publish(topic, make_event(n))
    for sub in (first, second):
        got = await receive_all(sub, 20)
        assert sorted(m.event.data["n"] for m in got) == list(range(20))
        await sub.close()


async def test_members_of_a_group_share_the_work(bus: EventBus, topic: str) -> None:
    members = [await bus.subscribe(topic, "workers"), await bus.subscribe(topic, "workers")]
    seen: list[list[int]] = [[], []]

    async def work(index: int) -> None:
        async for message in members[index]:
            seen[index].append(message.event.data["n"])
            await asyncio.sleep(0.005)  # a slow worker, so the other one gets a share
            await message.ack()

    workers = [asyncio.create_task(work(i)) for i in range(2)]
    for n in range(40):
        await bus.publish(topic, make_event(n))
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while len(seen[0]) + len(seen[1]) < 40 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for member in members:
        await member.close()
    await asyncio.gather(*workers)
    assert sorted(seen[0] + seen[1]) == list(range(40)), "each event exactly once in the group"
    assert seen[0] and seen[1], f"both members should work, got {len(seen[0])}/{len(seen[1])}"


async def test_an_acked_event_is_not_delivered_again(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await bus.publish(topic, make_event(1))
    await (await receive(sub)).ack()
    assert await nothing_within(sub, 0.3)
    await sub.close()


async def test_nack_redelivers_with_the_attempt_counted(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await bus.publish(topic, make_event(1))
    first = await receive(sub)
    await first.nack()
    second = await receive(sub)
    assert second.event == first.event
    assert second.attempt == 2
    await second.ack()
    assert await nothing_within(sub, 0.3)
    await sub.close()


async def test_nack_delay_holds_the_event_back(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await bus.publish(topic, make_event(1))
    message = await receive(sub)
    nacked_at = time.monotonic()
    await message.nack(delay=0.5)
    again = await receive(sub)
    assert time.monotonic() - nacked_at >= 0.45
    assert again.attempt == 2
    await again.ack()
    await sub.close()


async def test_settling_twice_counts_once(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await bus.publish(topic, make_event(1))
    message = await receive(sub)
    await message.ack()
    await message.nack()  # too late: already acked
    await message.ack()
    assert await nothing_within(sub, 0.3)
    await sub.close()


async def test_a_member_that_dies_without_acking_gives_the_event_back(
    backend: str, bus: EventBus, topic: str
) -> None:
    leaver = await bus.subscribe(topic, "g")
    await bus.publish(topic, make_event(1))
    taken = await receive(leaver)
    await leaver.close(drain_timeout=0.1)  # gone, holding the message unacked
    replacement = await bus.subscribe(topic, "g")
    again = await receive(replacement, REDELIVERY_TIMEOUT)
    assert again.event == taken.event
    if guarantees(backend, ATTEMPTS_SURVIVE_MEMBERS):
        assert again.attempt >= 2
    await again.ack()
    await replacement.close()


async def test_events_with_the_same_key_arrive_in_order(
    backend: str, bus: EventBus, topic: str
) -> None:
    require(backend, ORDERED_KEYS)
    sub = await bus.subscribe(topic, "g")
    for n in range(60):
        await bus.publish(topic, make_event(n), key=f"key-{n % 3}")
    got = await receive_all(sub, 60)
    for k in range(3):
        numbers = [m.event.data["n"] for m in got if m.key == f"key-{k}"]
        assert numbers == list(range(k, 60, 3)), f"key-{k} out of order: {numbers}"
    await sub.close()


async def test_a_poison_message_is_dead_lettered_and_does_not_stall_the_rest(
    bus: EventBus, topic: str
) -> None:
    dead_letter_topic = f"{topic}-dlq"
    dlq = await bus.subscribe(dead_letter_topic, "inspector")
    sub = bounded(await bus.subscribe(topic, "g"), bus, 3, dead_letter_topic)
    for n in range(6):  # event 0 is poison; 1-5 share its key, so its partition too
        await bus.publish(topic, make_event(n), key="same-key")
    poison_deliveries, good = 0, set()
    async with asyncio.timeout(REDELIVERY_TIMEOUT):
        while len(good) < 5 or poison_deliveries < 3:
            message = await receive(sub, REDELIVERY_TIMEOUT)
            if message.event.data["n"] == 0:
                poison_deliveries += 1
                await message.nack()
            else:
                good.add(message.event.data["n"])
                await message.ack()
    # reading on is what moves the poison (now past its limit) to the dead letter
    assert await nothing_within(sub, 1.0), "a dead-lettered message must not come back"
    letter = await receive(dlq, REDELIVERY_TIMEOUT)
    await letter.ack()
    assert (poison_deliveries, good) == (3, {1, 2, 3, 4, 5})
    assert letter.event.id == "ev-0"
    assert letter.event.extensions["fnerrorattempts"] == 3
    assert "gave up after 3 deliveries" in letter.event.extensions["fnerrorreason"]
    await sub.close()
    await dlq.close()


async def test_close_waits_for_events_in_flight(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await bus.publish(topic, make_event(1))
    message = await receive(sub)

    async def finish_later() -> None:
        await asyncio.sleep(0.2)
        await message.ack()

    finisher = asyncio.create_task(finish_later())
    started = time.monotonic()
    await sub.close(drain_timeout=5)
    assert 0.15 <= time.monotonic() - started < 4, "close waited for the ack, and no longer"
    await finisher
    with pytest.raises(StopAsyncIteration):
        await anext(sub)
    follower = await bus.subscribe(topic, "g")
    assert await nothing_within(follower, 0.3), "the acked event must not come back"
    await follower.close()


async def test_close_ends_a_waiting_iteration(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    waiter = asyncio.create_task(anext(sub))
    await asyncio.sleep(0.05)
    await sub.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiter, RECEIVE_TIMEOUT)


async def test_large_and_binary_events_arrive_intact(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    event = CloudEvent.create("test.binary", "/tests/bus", payload)
    await bus.publish(topic, event)
    message = await receive(sub)
    assert message.event.data == payload
    assert message.event.datacontenttype == "application/octet-stream"
    await message.ack()
    await sub.close()


async def test_closing_is_idempotent_and_final(bus: EventBus, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await sub.close()
    await sub.close()
    await bus.close()
    await bus.close()
    with pytest.raises(BusClosed):
        await bus.publish(topic, make_event(1))
