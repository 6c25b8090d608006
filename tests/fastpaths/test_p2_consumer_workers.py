"""The consumer's workers (events.bus.consumer): messages go to long-lived workers, not a
task each, and the contract holds: at most ``slots`` in flight, ack after ``handle``
returns, nack when it raises, every message handled exactly once on a healthy bus,
and ``stop`` ends every worker, idle or busy."""

from __future__ import annotations

import asyncio

from events.brokers.memory.bus import MemoryBus
from events.bus.consumer import Consumer
from events.bus.contract import Message
from events.cloudevent import CloudEvent

TOPIC, GROUP = "work", "workers"


def _event(i: int) -> CloudEvent:
    return CloudEvent(id=f"e-{i}", source="/test", type="t", data={"i": i})


def _consumer(bus: MemoryBus, handle, slots: int, reports: list[str]) -> Consumer:
    return Consumer(
        bus,
        TOPIC,
        GROUP,
        handle,
        slots=asyncio.Semaphore(slots),
        report=reports.append,
        max_deliveries=3,
        dead_letter_topic="work-dead",
    )


async def test_many_messages_few_tasks_bounded_in_flight() -> None:
    bus, seen, reports = MemoryBus(), [], []
    state = {"open": 0, "most": 0}
    done = asyncio.Event()
    total, slots = 5_000, 8

    async def handle(message: Message) -> None:
        state["open"] += 1
        state["most"] = max(state["most"], state["open"])
        if int(message.event.id[2:]) % 3 == 0:  # every third one waits a turn
            await asyncio.sleep(0)
        state["open"] -= 1
        seen.append(message.event.id)
        if len(seen) == total:
            done.set()

    consumer = _consumer(bus, handle, slots, reports)
    await consumer.start()
    for i in range(total):
        await bus.publish(TOPIC, _event(i))
    await asyncio.wait_for(done.wait(), 30)
    assert sorted(seen) == sorted(f"e-{i}" for i in range(total))
    assert state["most"] <= slots
    assert len(consumer._tasks) <= slots  # workers, not one task per message
    assert await bus.backlog(TOPIC, GROUP) == 0  # every message was acked
    await consumer.stop(drain_timeout=1)
    assert not consumer._tasks  # idle workers ended too
    assert reports == []
    await bus.close()


async def test_a_failing_handle_is_nacked_and_comes_back() -> None:
    bus, attempts, reports = MemoryBus(), {}, []
    done = asyncio.Event()

    async def handle(message: Message) -> None:
        attempts[message.event.id] = message.attempt
        if message.attempt == 1 and message.event.id == "e-1":
            raise RuntimeError("first try fails")
        if len(attempts) == 3 and attempts["e-1"] == 2:
            done.set()

    consumer = _consumer(bus, handle, 2, reports)
    await consumer.start()
    for i in range(3):
        await bus.publish(TOPIC, _event(i))
    await asyncio.wait_for(done.wait(), 10)
    assert attempts == {"e-0": 1, "e-1": 2, "e-2": 1}
    assert any("e-1" in r and "first try fails" in r for r in reports)
    await consumer.stop(drain_timeout=1)
    await bus.close()


async def test_stop_returns_work_in_hand_unacked() -> None:
    bus, reports = MemoryBus(), []
    started, release = asyncio.Event(), asyncio.Event()

    async def handle(message: Message) -> None:
        started.set()
        await release.wait()

    consumer = _consumer(bus, handle, 4, reports)
    await consumer.start()
    await bus.publish(TOPIC, _event(0))
    await asyncio.wait_for(started.wait(), 10)
    await consumer.stop(drain_timeout=0.05)
    assert not consumer._tasks
    assert await bus.backlog(TOPIC, GROUP) == 1  # not acked: it goes back to the group
    await bus.close()


class _NoDeadLetters(MemoryBus):
    """The real in-memory bus, with one fault injected: writing to the dead-letter topic
    fails with an error no bus contract names (as encoding a payload it cannot write did)."""

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        if topic == "work-dead":
            raise TypeError("Recursion limit reached")
        await super().publish(topic, event, key)


async def test_a_dead_letter_that_cannot_be_written_does_not_end_reading() -> None:
    # e-0 fails every time; its dead letter cannot be written, on the last delivery and
    # when it comes back once more. Reading goes on: e-1 is handled, e-0 stays on the bus.
    bus, handled, reports = _NoDeadLetters(), [], []
    after = asyncio.Event()

    async def handle(message: Message) -> None:
        if message.event.id == "e-0":
            raise RuntimeError("always fails")
        handled.append(message.event.id)
        after.set()

    consumer = Consumer(
        bus,
        TOPIC,
        GROUP,
        handle,
        slots=asyncio.Semaphore(2),
        report=reports.append,
        max_deliveries=1,
        dead_letter_topic="work-dead",
    )
    await consumer.start()
    await bus.publish(TOPIC, _event(0))
    for _ in range(200):  # the first delivery fails, then e-0 comes back after 0.5 s
        if sum("cannot dead-letter event e-0" in r for r in reports) >= 2:
            break
        await asyncio.sleep(0.01)
    await bus.publish(TOPIC, _event(1))
    await asyncio.wait_for(after.wait(), 5)
    assert handled == ["e-1"]
    assert not any("stopped reading" in r for r in reports), reports
    assert sum("cannot dead-letter event e-0" in r for r in reports) >= 2
    assert await bus.backlog(TOPIC, GROUP) == 1  # e-0: never acked, never lost
    await consumer.stop(drain_timeout=1)
    await bus.close()
