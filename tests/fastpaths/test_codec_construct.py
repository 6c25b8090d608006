"""The decoders' event construction (``events.cloudevent.from_attributes``) against the
general way.

``from_attributes`` takes the map apart once (what the context attributes leave are the
extensions), runs the constructor's checks inline (with a shortcut for 32-bit ``int``
extensions and for ``http(s):`` data schemas) and fills an unfrozen twin of the class
before giving it the CloudEvent class. The reference below is the general way: the
extensions picked out of the map as before, then the public constructor
(``CloudEvent(...)``, which validates through ``_build`` and sets each slot with its
setter). A seeded generator makes attribute maps on every edge (missing or None required
attributes, wrong types, str and int subclasses, empty strings, bad and reserved
extension names, out-of-range integers, None extensions, bad times, content types and
schemas); the results, or the errors, must be identical, extension order included, and
with ``owned=True`` as well.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases per test (default 100,000).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from events import cloudevent
from events.cloudevent import CONTEXT_ATTRIBUTES, CloudEvent, from_attributes
from events.errors import InvalidCloudEvent

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
SEED = 20241203
MISSING: Any = object()


class Text(str):
    """A str subclass: must take the general checks."""


class Number(int):
    """An int subclass: must take the general checks."""


def reference_from_attributes(attributes: Mapping[str, Any], data: Any = None) -> CloudEvent:
    """The general way: the extensions picked out in the map's order, then the constructor."""
    values = {name: attributes.get(name, MISSING) for name in CONTEXT_ATTRIBUTES}
    for name in ("id", "source", "type", "specversion"):
        if values[name] is MISSING:
            raise InvalidCloudEvent(name, "is required but missing")
    extensions = {
        name: value
        for name, value in attributes.items()
        if name not in CONTEXT_ATTRIBUTES and value is not None
    }
    optional = {name: None if v is MISSING else v for name, v in values.items()}
    return CloudEvent(**optional, extensions=extensions, data=data)


TEXT = ["a", "/sensors/north", "com.example.x", "", Text("a"), 5, None, b"x", True]
TIMES = [
    "2024-05-01T12:30:45.123456Z", "2024-05-01T12:30:45Z", "2024-05-01t12:30:45.5z",
    "2024-05-01T12:30:45+02:00", "2024-02-30T12:30:45Z", "2024-05-01 12:30:45Z",
    "2024-05-01T12:30:45,5Z", "20240501T123045Z", "", "yesterday", 1714566645, Text("x"),
]  # fmt: skip
CONTENT_TYPES = [
    "application/json", "text/plain; charset=utf-8", "application/octet-stream",
    "application/cloudevents+json", "text/plain\x01", "", 5, Text("text/plain"),
]  # fmt: skip
SCHEMAS = [
    "https://example.com/s.json", "http://x", "urn:example:s", "https:", "http", "https//x",
    "1http:x", "", "HTTPS://x", " https://x", 5, Text("https://x"), b"https://x",
]  # fmt: skip
EXTENSION_NAMES = [
    "tenant", "n1", "priority", "zeta", "Bad", "a-b", "data", "data_base64", "x" * 40, 7,
]  # fmt: skip
EXTENSION_VALUES = [
    "acme", "", 3, 0, -(2**31), 2**31 - 1, 2**31, -(2**31) - 1, True, False, b"\x00\xff",
    1.5, None, Number(3), Number(2**31), Text("t"), [1],
]  # fmt: skip


def pick(rng: random.Random, good: Any, others: list[Any], edge: float) -> Any:
    return rng.choice(others) if rng.random() < edge else good


def some_attributes(rng: random.Random) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    names = [*CONTEXT_ATTRIBUTES, *rng.sample(EXTENSION_NAMES, rng.randrange(0, 5))]
    for name in rng.sample(names, len(names)):
        if name in ("id", "source", "type", "specversion"):
            if rng.random() < 0.02:
                continue
            if name == "specversion":
                attributes[name] = pick(rng, "1.0", ["0.3", 1.0, None, Text("1.0")], 0.03)
            else:
                attributes[name] = pick(rng, "a", TEXT, 0.05)
        elif name in CONTEXT_ATTRIBUTES:
            if rng.random() < 0.4:
                continue
            choices = {"time": TIMES, "datacontenttype": CONTENT_TYPES, "dataschema": SCHEMAS}
            good = choices.get(name, ["room-12"])[0]
            attributes[name] = pick(rng, good, [None, *choices.get(name, TEXT)], 0.08)
        else:
            attributes[name] = pick(rng, "acme", EXTENSION_VALUES, 0.15)
    return attributes


def outcome(call: Callable[[], CloudEvent]) -> Any:
    """An event as everything a reader can see of it, or the error (type and words)."""
    try:
        event = call()
    except InvalidCloudEvent as exc:
        return "invalid", exc.attribute, exc.problem
    except Exception as exc:  # noqa: BLE001 -- any other failure must match too
        return type(exc).__name__, str(exc)
    return (
        "ok",
        type(event),
        type(event.extensions),
        [(name, getattr(event, name)) for name in CONTEXT_ATTRIBUTES],
        list(event.extensions.items()),
        [type(value) for value in event.extensions.values()],
        event.data,
        event,
    )


def mismatches(construct: Callable[..., CloudEvent], cases: int) -> tuple[list[str], int, int]:
    """Cases where ``construct`` differs from the reference: (first ten, built, refused)."""
    rng = random.Random(SEED)
    found: list[str] = []
    built = refused = 0
    for _ in range(cases):
        attributes = some_attributes(rng)
        data = rng.choice([None, {"a": 1}, "text", b"\x00"])
        general = outcome(lambda a=attributes, d=data: reference_from_attributes(a, d))
        calls = [
            lambda a=attributes, d=data: construct(a, d),
            lambda a=attributes, d=data: construct(MappingProxyType(a), d),
            lambda a=attributes, d=data: construct(dict(a), d, owned=True),
        ]
        for call in calls if rng.random() < 0.2 else calls[::2]:
            fast = outcome(call)
            if fast != general and len(found) < 10:
                found.append(f"{attributes!r}: fast {fast}, general {general}")
        built += general[0] == "ok"
        refused += general[0] != "ok"
    return found, built, refused


def test_from_attributes_is_the_constructor() -> None:
    found, built, refused = mismatches(from_attributes, CASES)
    print(f"\nconstruct: {CASES} cases, {built} built, {refused} refused")
    assert found == []
    assert built > CASES // 4 and refused > CASES // 4, "both outcomes must be exercised"


def test_owned_maps_are_consumed_not_copied() -> None:
    attributes = {"id": "a", "source": "/s", "type": "t", "specversion": "1.0", "n1": "x"}
    event = from_attributes(attributes, owned=True)
    assert attributes == {"n1": "x"}  # the context attributes were taken out of it
    attributes["n1"] = "changed"
    assert dict(event.extensions) == {"n1": "x"}  # the event kept a copy of its own


def test_the_comparison_catches_planted_bugs() -> None:
    """Each planted bug is a plausible slip in the fast path; the generator finds each."""

    def keeps_none_extensions(attributes: Any, data: Any = None, owned: bool = False) -> Any:
        event = from_attributes(attributes, data, owned=owned)
        extra = {n: v for n, v in attributes.items() if n not in CONTEXT_ATTRIBUTES}
        if None in extra.values():
            cloudevent._set_extensions(event, MappingProxyType(extra))
        return event

    def sorts_extensions(attributes: Any, data: Any = None, owned: bool = False) -> Any:
        event = from_attributes(attributes, data, owned=owned)
        cloudevent._set_extensions(event, MappingProxyType(dict(sorted(event.extensions.items()))))
        return event

    def lets_big_ints_through(attributes: Any, data: Any = None, owned: bool = False) -> Any:
        clipped = {
            n: (0 if type(v) is int and n not in CONTEXT_ATTRIBUTES else v)
            for n, v in attributes.items()
        }
        return from_attributes(clipped, data, owned=owned)

    def skips_the_time_check(attributes: Any, data: Any = None, owned: bool = False) -> Any:
        if type(attributes.get("time")) is str:
            attributes = {**attributes, "time": "2024-05-01T12:30:45Z"}
        return from_attributes(attributes, data, owned=owned)

    for planted in (
        keeps_none_extensions,
        sorts_extensions,
        lets_big_ints_through,
        skips_the_time_check,
    ):
        found, _, _ = mismatches(planted, 3_000)
        assert found, f"{planted.__name__} went unnoticed"


# -- the data schema shortcut ---------------------------------------------------------------


def reference_schema_check(schema: Any) -> Any:
    try:
        cloudevent._require_text("dataschema", schema)
        if not cloudevent._URI_SCHEME.match(schema):
            raise InvalidCloudEvent("dataschema", f"must be an absolute URI, got {schema!r}")
    except InvalidCloudEvent as exc:
        return exc.attribute
    return "ok"


def fast_schema_check(schema: Any) -> Any:
    try:
        cloudevent._check_optional(None, None, None, schema)
    except InvalidCloudEvent as exc:
        return exc.attribute
    return "ok"


def test_http_schemas_skip_only_checks_they_would_pass() -> None:
    rng = random.Random(SEED + 1)
    alphabet = ["h", "t", "p", "s", ":", "/", "H", "x", "1", "+", ".", "-", " ", "é", "\n"]
    accepted = 0
    for _ in range(CASES // 10):
        schema = rng.choice(["http", "https", ""]) + "".join(
            rng.choice(alphabet) for _ in range(rng.randrange(0, 6))
        )
        assert fast_schema_check(schema) == reference_schema_check(schema), schema
        accepted += fast_schema_check(schema) == "ok"
    assert 0 < accepted < CASES // 10
