"""Conditions: every rule the README states, from the compiled expression to a real delivery.

The README's rules:
1. An input is true while it has had an event within the window (inclusive), false before
   its first event and once the window has passed since its last one.
2. When an event arrives on an input, that input becomes true, every condition is evaluated,
   and every subscriber whose condition holds receives the event that just arrived, even a
   subscriber whose condition does not name that input.
3. A match does not reset anything: inputs stay true until their window passes.
4. Subscribers are independent: the same condition twice means two deliveries.
5. The window is the Trigger's ``conditionWindow`` (60 s by default).
"""

from __future__ import annotations

import itertools
import re

import pytest

from events.brokers.memory.bus import MemoryBus
from events.cloudevent import CloudEvent
from events.errors import ExpressionError
from events.manifests.openfunction import TriggerSpec
from tests.helpers import counter, until
from tests.sink import RecordingSink
from tests.triggers.harness import runner, subscriber
from triggers.conditions import TABLE_LIMIT, Condition

INPUTS = ("eventA", "eventB")


def trigger_with(*conditions: str, window: float = 60.0):
    subs = [subscriber(i, c, INPUTS) for i, c in enumerate(conditions)]
    trig, _ = runner(MemoryBus(), subs, {"eventA": "a", "eventB": "b"}, window=window)
    return trig


def fired(trig, input_name: str, now: float) -> list[int]:
    return [s.index for s in trig.matching(input_name, now)]


def test_an_input_is_false_until_its_first_event() -> None:
    trig = trigger_with("eventA && eventB", "eventA")
    assert fired(trig, "eventA", 0.0) == [1], "eventB has had no event yet"


def test_an_event_reaches_every_subscriber_whose_condition_holds() -> None:
    # OpenFunction's own sample: subscriber `eventB`, and `eventA && eventB`.
    trig = trigger_with("eventB", "eventA && eventB")
    assert fired(trig, "eventA", 0.0) == []
    assert fired(trig, "eventB", 1.0) == [0, 1]
    assert fired(trig, "eventA", 2.0) == [0, 1], "eventB is still fresh, so `eventB` fires too"


def test_the_window_is_inclusive_and_then_the_input_turns_false() -> None:
    trig = trigger_with("eventA && eventB", window=10.0)
    assert fired(trig, "eventA", 0.0) == []
    assert fired(trig, "eventB", 10.0) == [0], "exactly one window later eventA still counts"
    assert fired(trig, "eventB", 10.001) == [], "a moment later it does not"


def test_a_match_does_not_reset_the_inputs() -> None:
    trig = trigger_with("eventA && eventB")
    fired(trig, "eventA", 0.0)
    assert fired(trig, "eventB", 1.0) == [0]
    assert fired(trig, "eventB", 2.0) == [0], "eventA stays true after the match"


def test_a_later_event_restarts_its_inputs_window() -> None:
    trig = trigger_with("eventA && eventB", window=10.0)
    fired(trig, "eventA", 0.0)
    fired(trig, "eventA", 8.0)
    assert fired(trig, "eventB", 15.0) == [0], "eventA's window runs from its last event"


def test_negation_sees_an_input_that_went_stale() -> None:
    trig = trigger_with("eventA && !eventB", window=5.0)
    fired(trig, "eventB", 0.0)
    assert fired(trig, "eventA", 1.0) == []
    assert fired(trig, "eventA", 6.0) == [0]


def test_the_window_comes_from_condition_window_in_any_duration_form() -> None:
    base = {"eventBus": "default", "inputs": {"a": {"eventSource": "s", "event": "e"}}}
    base["subscribers"] = [{"condition": "a", "topic": "t"}]
    assert TriggerSpec.model_validate(base).conditionWindow == 60.0
    for written, seconds in (("90s", 90.0), ("1m30s", 90.0), ("PT2M", 120.0), (5, 5.0)):
        spec = TriggerSpec.model_validate(base | {"conditionWindow": written})
        assert spec.conditionWindow == seconds


@pytest.mark.parametrize("count", [2, TABLE_LIMIT + 1])
def test_every_assignment_matches_a_direct_evaluation(count: int) -> None:
    """Up to TABLE_LIMIT inputs a truth table answers; beyond it CEL runs. Both must agree
    with Python's own reading of the same expression."""
    names = [f"i{n}" for n in range(count)]
    expression = f"({names[0]} || {names[1]}) && !{names[-1]}"
    condition = Condition(expression, names)
    assignments = itertools.product((False, True), repeat=count)
    for bits in itertools.islice(assignments, 0, None, max(1, 2**count // 300)):
        fresh = dict(zip(names, bits, strict=True))
        expected = (fresh[names[0]] or fresh[names[1]]) and not fresh[names[-1]]
        assert condition.evaluate(fresh) is expected, fresh


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("eventA && eventC", "unknown input(s) eventC"),
        ("eventA &&", "does not compile at column"),
        ("eventA ? 1 : 2", "must be true or false"),
    ],
)
def test_bad_conditions_fail_when_compiled(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        Condition(expression, INPUTS)


async def test_end_to_end_the_arriving_event_is_what_the_subscriber_receives() -> None:
    async with RecordingSink() as both, RecordingSink() as only_b:
        bus = MemoryBus()
        subs = [
            subscriber(0, "eventA && eventB", INPUTS, sink_url=both.url),
            subscriber(1, "eventB", INPUTS, sink_url=only_b.url),
        ]
        trig, ctx = runner(bus, subs, {"eventA": "a", "eventB": "b"})
        await trig.start()

        def arrived() -> float:
            return sum(counter(ctx.metrics, "trigger_events", "ns/t", i) for i in INPUTS)

        for count, (topic, event_id) in enumerate((("a", "a-1"), ("b", "b-1"), ("a", "a-2"))):
            await bus.publish(topic, CloudEvent.create("t", "/s", None, id=event_id))
            # conditions depend on arrival order across two topics, so let each one land
            await until(lambda n=count: arrived() > n, f"{event_id} landed", 5)
        await both.wait_for(2)
        await only_b.wait_for(2)
        await trig.stop()
        await bus.close()
    assert [e.id for e in both.accepted] == ["b-1", "a-2"], "a-1 came before eventB was true"
    assert [e.id for e in only_b.accepted] == ["b-1", "a-2"], "a-2 arrived while eventB held"
