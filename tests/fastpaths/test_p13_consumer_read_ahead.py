"""The consumer's read-ahead (events.bus.consumer.READ_AHEAD): while every slot is busy the
reader queues up to READ_AHEAD messages, and a worker that finishes takes the next one
itself. Checked against what the plain hand-over guaranteed: every message handled once
and acked, at most ``slots`` handled at once, handlers started in the order the bus
handed the messages over (what ``orderBy`` builds on), and no queued message left
waiting when the input goes quiet, also when another consumer holds the shared slots.
"""

from __future__ import annotations

import asyncio
import random

from events.brokers.memory.bus import MemoryBus
from events.bus.consumer import Consumer
from events.bus.contract import Message
from events.cloudevent import CloudEvent

GROUP = "read-ahead"
#: messages over all generated runs: the differential proof's size
TOTAL = 100_000


def _event(topic: str, i: int) -> CloudEvent:
    return CloudEvent(id=f"{topic}-{i}", source="/test", type="t")


def _consumer(bus: MemoryBus, topic: str, handle, slots: asyncio.Semaphore) -> Consumer:
    return Consumer(
        bus,
        topic,
        GROUP,
        handle,
        slots=slots,
        report=lambda text: (_ for _ in ()).throw(AssertionError(text)),
        max_deliveries=3,
        dead_letter_topic=f"{topic}-dead",
    )


class _Recorder:
    """A handler that waits a generated number of loop turns, recording start order and
    the most handled at once."""

    def __init__(self, rng: random.Random, expected: int) -> None:
        self.rng, self.expected = rng, expected
        self.started: list[str] = []
        self.finished: list[str] = []
        self.open = self.most = 0
        self.done = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.started.append(message.event.id)
        self.open += 1
        self.most = max(self.most, self.open)
        for _ in range(self.rng.choice((0, 0, 1, 2, 5))):
            await asyncio.sleep(0)
        self.open -= 1
        self.finished.append(message.event.id)
        if len(self.finished) == self.expected:
            self.done.set()


async def _one_run(rng: random.Random, count: int, slots: int) -> None:
    bus, topic = MemoryBus(), "ra"
    handle = _Recorder(rng, count)
    consumer = _consumer(bus, topic, handle, asyncio.Semaphore(slots))
    await consumer.start()
    for i in range(count):
        await bus.publish(topic, _event(topic, i))
        if rng.random() < 0.05:  # the input goes quiet now and then
            await asyncio.sleep(0)
    await asyncio.wait_for(handle.done.wait(), 30)
    order = [f"{topic}-{i}" for i in range(count)]
    assert handle.started == order, "a handler started out of the bus's order"
    assert sorted(handle.finished) == sorted(order)
    assert handle.most <= slots
    await asyncio.sleep(0)
    assert await bus.backlog(topic, GROUP) == 0, "a handled message was not acked"
    await consumer.stop(drain_timeout=1)
    await bus.close()


async def test_generated_runs_keep_order_bound_and_ack_everything() -> None:
    rng, handled = random.Random(1313), 0
    while handled < TOTAL:
        count, slots = rng.randrange(1, 2_000), rng.choice((1, 2, 3, 8, 64))
        await _one_run(rng, count, slots)
        handled += count


async def test_workers_take_queued_messages_themselves() -> None:
    # at full load the reader waits for a slot about once per READ_AHEAD messages
    bus, topic, count, slots = MemoryBus(), "load", 4_000, 8
    rng = random.Random(7)
    handle = _Recorder(rng, count)
    consumer = _consumer(bus, topic, handle, asyncio.Semaphore(slots))
    waits = 0
    original = consumer._wait_for_a_slot

    async def counted() -> None:
        nonlocal waits
        waits += 1
        await original()

    consumer._wait_for_a_slot = counted  # type: ignore[method-assign]
    await consumer.start()
    for i in range(count):  # publishing never yields here: all wait before the first read
        await bus.publish(topic, _event(topic, i))
    await asyncio.wait_for(handle.done.wait(), 30)
    assert waits < count // 4, f"the reader waited for a slot {waits} times for {count}"
    await consumer.stop(drain_timeout=1)
    await bus.close()


async def test_queued_messages_finish_when_another_input_holds_the_slots() -> None:
    # Two consumers share one slot. ``busy`` holds it while ``quiet`` gets messages: they
    # must not wait for a worker of ``quiet`` (it has none busy) but for the slot.
    bus, shared = MemoryBus(), asyncio.Semaphore(1)
    release, held = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def slow(message: Message) -> None:
        held.set()
        await release.wait()
        seen.append(message.event.id)

    async def quick(message: Message) -> None:
        seen.append(message.event.id)

    busy = _consumer(bus, "busy", slow, shared)
    quiet = _consumer(bus, "quiet", quick, shared)
    await busy.start()
    await quiet.start()
    await bus.publish("busy", _event("busy", 0))
    await asyncio.wait_for(held.wait(), 5)
    for i in range(3):
        await bus.publish("quiet", _event("quiet", i))
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == [], "a message was handled while the only slot was held"
    release.set()
    for _ in range(200):
        if len(seen) == 4:
            break
        await asyncio.sleep(0.005)
    assert seen == ["busy-0", "quiet-0", "quiet-1", "quiet-2"]
    assert await bus.backlog("quiet", GROUP) == 0
    for consumer in (busy, quiet):
        await consumer.stop(drain_timeout=1)
    await bus.close()
