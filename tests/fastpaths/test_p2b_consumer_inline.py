"""The consumer's inline start (events.bus.consumer, ``inline=True``) against handing
every message to a worker (``inline=False``): 100,000 generated messages, each with a
generated behaviour (done at once, done after waits, failing once, failing always,
failing after a wait), go through a real in-memory bus with both; every message must be
handled on the same deliveries, end the same way (acked, or dead-lettered with the same
reason) and the bus must hold nothing unacked. At most ``slots`` handlers are ever open
at once in either mode."""

from __future__ import annotations

import asyncio
import random

from events.brokers.memory.bus import MemoryBus
from events.bus.consumer import INLINE_BURST, Consumer
from events.bus.contract import Message
from events.cloudevent import CloudEvent

CASES, SLOTS, MAX_DELIVERIES = 100_000, 16, 2
TOPIC, GROUP, DEAD = "work", "workers", "work-dead"
BEHAVIOURS = ["now"] * 14 + ["wait", "wait", "wait", "fail-once", "fail-always", "wait-fail"]


class Boom(Exception):
    pass


async def _run(inline: bool, plan: list[str]) -> tuple[dict, dict, int, int | None]:
    bus = MemoryBus(max_pending=CASES + 10)
    attempts: dict[int, list[int]] = {i: [] for i in range(len(plan))}
    acked: dict[int, int] = {}
    state = {"open": 0, "most": 0}
    finished = asyncio.Event()
    letters: dict[int, str] = {}

    def settled() -> None:
        if len(acked) + len(letters) == len(plan):
            finished.set()

    async def handle(message: Message) -> None:
        i = message.event.data["i"]
        attempts[i].append(message.attempt)
        state["open"] += 1
        state["most"] = max(state["most"], state["open"])
        try:
            behaviour = plan[i]
            if behaviour in ("wait", "wait-fail"):
                for _ in range(1 + i % 3):
                    await asyncio.sleep(0)
            if behaviour == "fail-always" or behaviour == "wait-fail":
                raise Boom(f"no {i}")
            if behaviour == "fail-once" and message.attempt == 1:
                raise Boom(f"not yet {i}")
        finally:
            state["open"] -= 1
        acked[i] = message.attempt
        settled()

    dead = await bus.subscribe(DEAD, "reader")

    async def read_dead() -> None:
        async for message in dead:
            letters[message.event.data["i"]] = message.event.extensions["fnerrorreason"]
            await message.ack()
            settled()

    reader = asyncio.create_task(read_dead())
    consumer = Consumer(
        bus,
        TOPIC,
        GROUP,
        handle,
        slots=asyncio.Semaphore(SLOTS),
        report=lambda _: None,
        max_deliveries=MAX_DELIVERIES,
        dead_letter_topic=DEAD,
        inline=inline,
    )
    await consumer.start()
    for i in range(len(plan)):
        await bus.publish(TOPIC, CloudEvent(id=f"e-{i}", source="/t", type="t", data={"i": i}))
    await asyncio.wait_for(finished.wait(), 60)
    backlog = await bus.backlog(TOPIC, GROUP)
    await consumer.stop()
    reader.cancel()
    await bus.close()
    outcomes = {i: ("acked", acked[i]) if i in acked else ("dead", letters[i]) for i in attempts}
    return attempts, outcomes, state["most"], backlog


def test_inline_start_matches_workers_on_100k_messages() -> None:
    rng = random.Random(2)
    plan = [rng.choice(BEHAVIOURS) for _ in range(CASES)]
    workers = asyncio.run(_run(False, plan))
    inline = asyncio.run(_run(True, plan))
    assert inline[0] == workers[0]  # the same deliveries of every message
    assert inline[1] == workers[1]  # the same end: acked on that delivery, or the letter
    for _, _, most, backlog in (workers, inline):
        assert 1 <= most <= SLOTS
        assert backlog == 0
    assert {outcome[0] for outcome in inline[1].values()} == {"acked", "dead"}


def test_inline_reader_lets_others_run() -> None:
    """A burst of messages settled inline does not keep the rest of the process waiting."""

    async def run() -> int:
        bus, ticks, done = MemoryBus(max_pending=100_000), [0], asyncio.Event()
        count = [0]

        async def handle(message: Message) -> None:
            count[0] += 1
            if count[0] == 5_000:
                done.set()

        async def ticker() -> None:
            while not done.is_set():
                ticks[0] += 1
                await asyncio.sleep(0)

        consumer = Consumer(
            bus,
            TOPIC,
            GROUP,
            handle,
            slots=asyncio.Semaphore(4),
            report=lambda _: None,
            max_deliveries=3,
            dead_letter_topic=DEAD,
            inline=True,
        )
        await consumer.start()
        for i in range(5_000):
            await bus.publish(TOPIC, CloudEvent(id=f"e-{i}", source="/t", type="t"))
        tick = asyncio.create_task(ticker())
        await asyncio.wait_for(done.wait(), 30)
        await tick
        await consumer.stop()
        await bus.close()
        return ticks[0]

    assert asyncio.run(run()) >= 5_000 // INLINE_BURST
