"""The runner's fast path for one input on the in-process state (triggers.runner
``_always``) against the general path (``LocalState.mark_now`` + ``_select``).

100,000 generated events over 400 generated triggers: each trigger is built twice, once
with the fast path and once forced onto the general path, and every event goes through
``_handle`` of both; which subscribers delivered it (their delivered tallies) and which
filters dropped it (their counters) must agree, event by event. Windows include 0,
negative and NaN (no fast path then), conditions the constants and negations."""

from __future__ import annotations

import asyncio
import math
import random

from events.brokers.memory.bus import MemoryBus
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.delivery.sinks import SinkClient
from events.manifests.extensions import DEFAULT_DELIVERY, FilterSpec
from events.observability.console import Console
from events.observability.metrics import Metrics
from triggers.conditions import Condition
from triggers.filters import compile_filter
from triggers.runner import TriggerRunner
from triggers.subscriber import DeliveryContext, Subscriber

TRIGGERS, EVENTS_EACH = 400, 250
INPUT = "tick"
CONDITIONS = [
    "tick",
    "!tick",
    "true",
    "false",
    "tick || false",
    "tick && true",
    "!(tick && false)",
    "tick == true",
    "tick != tick",
    "(tick || !tick) && tick",
]
TYPES = ["a", "b", "c"]


class _Recorded(Message):
    """A message of no bus: ``_handle`` never settles it (the consumer does)."""

    async def ack(self) -> None:
        return None

    async def nack(self, delay: float = 0.0) -> None:
        return None


def _runner(rng: random.Random, window: float, general: bool) -> TriggerRunner:
    ctx = DeliveryContext(MemoryBus(), SinkClient(), Metrics(), Console(quiet=True))
    subscribers = []
    for index in range(rng.randint(1, 4)):
        event_filter = None
        if rng.random() < 0.3:
            event_filter = compile_filter(FilterSpec(exact={"type": rng.choice(TYPES)}))
        subscribers.append(
            Subscriber(
                trigger="test/t",
                index=index,
                condition=Condition(rng.choice(CONDITIONS), [INPUT]),
                policy=DEFAULT_DELIVERY,
                dead_letter_topic="dl",
                topic=f"out-{index}",
                filter=event_filter,
            )
        )
    runner = TriggerRunner("test/t", {INPUT: "in"}, subscribers, window, "g", ctx)
    if general:
        runner._always = None
    return runner


def _outcome(runner: TriggerRunner) -> tuple[tuple[int, float], ...]:
    result = []
    for subscriber in runner.subscribers:
        dropped = runner._dropped.get(subscriber.index)
        dropped_count = dropped._value.get() if dropped is not None else 0.0
        result.append((subscriber._delivered_tally.count, dropped_count))
    return tuple(result)


async def _compare(seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    window = rng.choice([0.0, 0.5, 10.0, 60.0, -1.0, math.nan, math.inf])
    fast = _runner(random.Random(seed), window, general=False)
    general = _runner(random.Random(seed), window, general=True)
    assert general._always is None
    used_fast = fast._always is not None
    assert used_fast == (window >= 0)
    checked = 0
    for i in range(EVENTS_EACH):
        event = CloudEvent(id=f"{seed}-{i}", source="/s", type=rng.choice(TYPES))
        for runner in (fast, general):
            await runner._handle(INPUT, _Recorded("in", event, None, 1))
        assert _outcome(fast) == _outcome(general), (seed, i, window)
        checked += 1
    return checked, used_fast


def test_fast_path_matches_general_path_on_100k_events() -> None:
    async def run() -> tuple[int, int]:
        total = fast_triggers = 0
        for seed in range(TRIGGERS):
            checked, used_fast = await _compare(seed)
            total += checked
            fast_triggers += used_fast
        return total, fast_triggers

    total, fast_triggers = asyncio.run(run())
    assert total == TRIGGERS * EVENTS_EACH >= 100_000
    assert fast_triggers > TRIGGERS // 2  # the fast path was actually exercised


def test_matching_another_input_turns_the_fast_path_off() -> None:
    runner = _runner(random.Random(1), 60.0, general=False)
    assert runner._always is not None
    runner.matching("other", 1.0)
    assert runner._always is None
