"""The plain-Python CEL shortcut (triggers/celfast.py) against the engine, case by case.

A seeded generator writes filter expressions (inside the shortcut's grammar, and just
outside it: string ordering, nested data, ``!a == b``, uint literals, method calls) and
events whose values sit on every edge the shortcut relies on: missing attributes and
fields, JSON null, bools next to ints, ints at +-2**53 and beyond 64 bits, NaN and
infinities, -0.0, strings with lone surrogates, containers and objects the engine cannot
convert, data that is not an object. Each case runs the same ``CelClause`` with and
without the shortcut; the result and every reported error must be identical.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases (default 100,000, a few seconds).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from events.cloudevent import CloudEvent
from triggers.celfast import compile_fast
from triggers.celfilter import CelClause

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
EVENTS_PER_EXPRESSION = 50
SEED = 20240501

ATTRIBUTES = ["type", "subject", "source", "id", "partitionkey", "priority", "flag", "blob", "gone"]
FIELDS = ["speed", "seq", "status", "ok", "name", "gps", "absent"]
STRINGS = ["a", "b", "com.example.telemetry", "x y", "é", "80", "ü\U0001f600", ""]
NUMBERS = [
    "0", "1", "80", "81", "9007199254740992", "9007199254740993", "80.0", "80.5", "0.5",
    "1e2", "8.05E1", "0.0", "1e-3", "9007199254740992.0",
]  # fmt: skip
#: Around 2**53, where a double stops holding every int (the engine compares int with
#: double as doubles), and past 64 bits.
NUMBER_EDGES = [
    "9007199254740991", "9007199254740992", "9007199254740993", "9007199254740992.0",
    "9007199254740994.0", "18446744073709551615", "1e300",
]  # fmt: skip
OPERATORS = ["==", "!=", "<", "<=", ">", ">="]
#: Values a data field takes: the usual ones, and every edge the shortcut relies on.
FIELD_VALUES: list[Any] = [
    0, 1, 80, 81, -80, 79, 80.0, 80.5, 79.999, -0.0, 0.0, 0.5, 100.0, 100,
    True, False, "a", "b", "80", "com.example.telemetry", "", "é",
]  # fmt: skip
INT_EDGES: list[Any] = [
    2**53 - 1, 2**53, 2**53 + 1, 2**53 + 2, -(2**53), -(2**53) - 1, 2**63, 2**64 - 1, 2**64 + 5,
    9007199254740992.0, 9007199254740994.0, 1e300,
]  # fmt: skip
FIELD_EDGES: list[Any] = [
    *INT_EDGES, float("inf"), float("-inf"), float("nan"), None, "bad\ud800", "\udcff",
    [1, 2], {"lat": 1}, {"x": "\ud800"}, (1, 2), {1, 2}, object(), b"a", bytearray(b"a"),
]  # fmt: skip
EXTENSION_VALUES: list[Any] = ["a", "b", "80", "x y", "é", 0, 80, 81, -80, True, False, b"a"]
EXTENSION_EDGES: list[Any] = ["bad\ud800", 2**31 - 1, -(2**31), b""]
EDGES = 0.15  # the share of values taken from the edges
DATA_SHAPES = ["dict"] * 12 + ["none", "list", "text", "bytes"]


def pick(rng: random.Random, usual: list[Any], edges: list[Any]) -> Any:
    return rng.choice(edges if rng.random() < EDGES else usual)


def path(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return f"event.{rng.choice(ATTRIBUTES)}"
    if roll < 0.75:
        return f"event.data.{rng.choice(FIELDS)}"
    if roll < 0.98:
        return f"data.{rng.choice(FIELDS)}"
    return f"event.data.{rng.choice(FIELDS)}.lat"  # nested: outside the grammar


def comparison(rng: random.Random) -> str:
    """``path OP literal``: equality for strings (ordering now and then, which is outside
    the grammar), any comparison for numbers."""
    if rng.random() < 0.5:
        quote = '"' if rng.random() < 0.8 else "'"
        operator = rng.choice(["==", "!="]) if rng.random() < 0.95 else rng.choice(OPERATORS)
        return f"{path(rng)} {operator} {quote}{rng.choice(STRINGS)}{quote}"
    number = rng.choice(NUMBER_EDGES if rng.random() < 0.2 else NUMBERS)
    sign = "-" if rng.random() < 0.2 else ""
    return f"{path(rng)} {rng.choice(OPERATORS)} {sign}{number}"


def leaf(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return comparison(rng)
    if roll < 0.75:
        items = ", ".join(f'"{rng.choice(STRINGS)}"' for _ in range(rng.randint(0, 3)))
        return f"{path(rng)} in [{items}]"
    if roll < 0.95:
        return f"has({path(rng)})"
    return rng.choice(  # just outside the grammar: no shortcut, same answers
        [
            f"!{comparison(rng)}",
            f"{path(rng)} > 80u",
            f'{path(rng)}.startsWith("a")',
            f"size({path(rng)}) > 1",
            f"{path(rng)} == null",
            "true",
            f'{path(rng)} in ["a", 1]',
        ]
    )


def expression(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 2 or roll < 0.35:
        return leaf(rng)
    if roll < 0.6:
        parts = [expression(rng, depth + 1) for _ in range(rng.randint(2, 3))]
        return " && ".join(parts)
    if roll < 0.8:
        parts = [expression(rng, depth + 1) for _ in range(rng.randint(2, 3))]
        return " || ".join(f"({part})" if "&&" in part else part for part in parts)
    if roll < 0.95:
        return f"!({expression(rng, depth + 1)})"
    return f"({expression(rng, depth + 1)})"


def event(rng: random.Random) -> CloudEvent:
    extensions = {}
    for name in ("partitionkey", "priority", "flag", "blob"):
        if rng.random() < 0.7:
            extensions[name] = pick(rng, EXTENSION_VALUES, EXTENSION_EDGES)
    shape = rng.choice(DATA_SHAPES)
    data: Any = None
    if shape == "dict":
        data = {f: pick(rng, FIELD_VALUES, FIELD_EDGES) for f in FIELDS[:-1] if rng.random() < 0.85}
    elif shape == "list":
        data = [pick(rng, FIELD_VALUES, FIELD_EDGES)]
    elif shape == "text":
        data = rng.choice(["a", "speed", "bad\ud800"])
    elif shape == "bytes":
        data = rng.choice([b"speed", bytearray(b"x")])
    return CloudEvent(
        id=rng.choice(["1", "a3f1"]),
        source=pick(rng, ["/s", "a"], ["bad\ud800"]),
        type=pick(rng, ["a", "b", "com.example.telemetry", "x y", "é"], ["bad\ud800"]),
        subject=rng.choice([None, "a", "vehicles/v002", "é"]),
        extensions=extensions,
        data=data,
    )


def run_both(clause: CelClause, general: CelClause, case: CloudEvent) -> tuple[Any, Any]:
    fast_reports: list[str] = []
    general_reports: list[str] = []
    fast = clause.matches(case, lambda problem, _: fast_reports.append(problem))
    slow = general.matches(case, lambda problem, _: general_reports.append(problem))
    return (fast, fast_reports), (slow, general_reports)


def compiled(expression_text: str) -> tuple[CelClause, CelClause] | None:
    """The clause with and without the shortcut; None for what the loader refuses."""
    try:
        return CelClause(expression_text), CelClause(expression_text, fast=False)
    except Exception:  # noqa: BLE001 -- a generated expression the loader refuses
        return None


def test_the_shortcut_agrees_with_the_engine_on_generated_cases() -> None:
    rng = random.Random(SEED)
    cases = sure = sure_true = with_shortcut = 0
    mismatches: list[str] = []
    while cases < CASES:
        text = expression(rng)
        pair = compiled(text)
        if pair is None:
            continue
        clause, general = pair
        shortcut = compile_fast(text)
        with_shortcut += shortcut is not None
        for _ in range(EVENTS_PER_EXPRESSION):
            case = event(rng)
            fast, slow = run_both(clause, general, case)
            cases += 1
            answer = None if shortcut is None else shortcut(case)
            sure += answer is not None
            sure_true += answer is True
            if fast != slow and len(mismatches) < 10:
                mismatches.append(f"{text!r} on {case!r}: shortcut {fast}, engine {slow}")
    print(
        f"\n{cases} cases, {sure} answered by the shortcut ({sure_true} true), "
        f"{with_shortcut} expressions with one"
    )
    assert mismatches == []
    # the generator must exercise the shortcut both ways, or the agreement proves nothing
    assert sure > cases // 4
    assert cases // 10 < sure_true < sure - cases // 10


@pytest.mark.parametrize(
    "text",
    [
        '!event.type == "a"',  # (!event.type) == "a" in CEL
        'event.type < "b"',  # string ordering
        "event.data.gps.lat > 1",  # nested data: the engine converts whole maps
        "has(event.data)",  # the whole data
        "event.data.speed > 80u",
        "event.data.speed > 9007199254740993",
        'event.type.startsWith("a")',
        'event.type in ["a", 1]',
        'event.type == "a\\tb"',  # escapes are the engine's to read
        'event.type == r"a"',
    ],
)
def test_shapes_outside_the_grammar_have_no_shortcut(text: str) -> None:
    assert compiled(text) is not None, "the case must be a valid filter"
    assert compile_fast(text) is None


@pytest.mark.parametrize(
    "text",
    [
        'event.type == "com.example.telemetry" && event.data.speed > 80.0',
        'has(data.speed) && data.speed >= -1.5e1 || !(event.partitionkey in ["a", "b"])',
        "!!(event.data.seq != 0)",
    ],
)
def test_usual_shapes_have_a_shortcut(text: str) -> None:
    assert compile_fast(text) is not None


def test_an_error_on_the_fast_path_is_reported_as_the_engine_words_it() -> None:
    clause = CelClause("event.data.speed > 80.0")
    reports: list[str] = []
    reading = CloudEvent(id="1", source="/s", type="t", data={"speed": "fast"})
    assert clause.matches(reading, lambda problem, _: reports.append(problem)) is False
    assert len(reports) == 1 and "No such overload" in reports[0]
    reports.clear()
    no_speed = reading.evolve(data={"seq": 1})
    assert clause.matches(no_speed, lambda problem, _: reports.append(problem)) is False
    assert reports == ["no such key: 'speed'"]
