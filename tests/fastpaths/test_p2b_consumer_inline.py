"""The consumer's inline start (events.bus.consumer, ``inline=True``) against handing
every message to a worker (``inline=False``): 100,000 generated messages, each with a
generated behaviour (done at once, done after waits, failing once, failing always,
failing after a wait), go through a real in-memory bus with both; every message must be
handled on the same deliveries, end the same way (acked, or dead-lettered with the same
reason) and the bus must hold nothing unacked. At most ``slots`` handlers are ever open
at once in either mode."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import ClientTimeout

from events.brokers.memory.bus import MemoryBus
from events.bus.consumer import INLINE_BURST, Consumer
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.types import Report

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


async def _started(
    bus: MemoryBus, handle: Callable[[Message], Awaitable[None]], report: Report | None = None
) -> Consumer:
    """A started inline consumer of TOPIC with 4 slots and 3 deliveries; what it reports
    goes to ``report`` (nowhere without one)."""
    consumer = Consumer(
        bus,
        TOPIC,
        GROUP,
        handle,
        slots=asyncio.Semaphore(4),
        report=report or (lambda _: None),
        max_deliveries=3,
        dead_letter_topic=DEAD,
        inline=True,
    )
    await consumer.start()
    return consumer


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

        consumer = await _started(bus, handle)
        for i in range(5_000):
            await bus.publish(TOPIC, CloudEvent(id=f"e-{i}", source="/t", type="t"))
        tick = asyncio.create_task(ticker())
        await asyncio.wait_for(done.wait(), 30)
        await tick
        await consumer.stop()
        await bus.close()
        return ticks[0]

    assert asyncio.run(run()) >= 5_000 // INLINE_BURST


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[str]:
    """A real HTTP endpoint that reads each request and never answers; its URL."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()


def test_a_timeout_in_inline_handling_cancels_only_that_handling() -> None:
    """Timeouts such as aiohttp's cancel the task they were entered in. Handling started
    by the reader must finish in the reader's task, or a sink timeout cancels the reader
    (reading stops for good) and the handler waits on past its timeout."""

    async def run() -> tuple[list[str], list[int], bool]:
        async with _silent_server() as url, aiohttp.ClientSession() as session:
            return await consume(url, session)

    async def consume(url: str, session: aiohttp.ClientSession) -> tuple[list, list, bool]:
        bus, outcomes, handled = MemoryBus(), [], []

        async def handle(message: Message) -> None:
            i = message.event.data["i"]
            handled.append(i)
            if i == 0:  # the first one waits on a sink that never answers
                try:
                    async with session.post(url, data=b"x", timeout=ClientTimeout(0.2)):
                        pass
                except TimeoutError:
                    outcomes.append("timed out")

        consumer = await _started(bus, handle)
        for i in range(50):
            await bus.publish(TOPIC, CloudEvent(id=f"e-{i}", source="/t", type="t", data={"i": i}))
            for _ in range(300 if i == 0 else 0):  # the rest come after the timeout
                if outcomes:
                    break
                await asyncio.sleep(0.01)
        for _ in range(300):  # up to 3 s
            if len(handled) == 50:
                break
            await asyncio.sleep(0.01)
        stopped = asyncio.create_task(consumer.stop(drain_timeout=1))
        done, _ = await asyncio.wait({stopped}, timeout=5)
        await bus.close()
        return outcomes, handled, bool(done)

    outcomes, handled, stopped = asyncio.run(run())
    assert outcomes == ["timed out"], "the handler's own timeout ended its wait"
    assert sorted(handled) == list(range(50)), "the reader went on reading after it"
    assert stopped, "stop returned"


@pytest.mark.parametrize("waits", [False, True], ids=["at-once", "after-a-wait"])
def test_a_handler_raising_cancelled_error_does_not_end_the_reader(waits: bool) -> None:
    async def run() -> tuple[list[tuple[int, int]], list[str]]:
        bus, seen, reports = MemoryBus(), [], []
        done = asyncio.Event()

        async def handle(message: Message) -> None:
            i = message.event.data["i"]
            seen.append((i, message.attempt))
            if i == 1 and message.attempt == 1:
                if waits:
                    await asyncio.sleep(0)
                raise asyncio.CancelledError  # of its own accord: nobody cancelled it
            if i == 2 and message.attempt == 1:
                return
            if i == 1:
                done.set()

        consumer = await _started(bus, handle, reports.append)
        for i in range(3):
            await bus.publish(TOPIC, CloudEvent(id=f"e-{i}", source="/t", type="t", data={"i": i}))
        await asyncio.wait_for(done.wait(), 5)
        await consumer.stop()
        await bus.close()
        return seen, reports

    seen, reports = asyncio.run(run())
    assert (2, 1) in seen, "the reader went on after the CancelledError"
    assert (1, 2) in seen, "the event came back"
    assert any("raised CancelledError" in line for line in reports), reports
