"""The binary-mode encoder's shortcuts of issue 13 against the general way.

``http.to_binary`` writes an exact ``int`` extension with ``str()`` instead of calling
``canonical_string``, returns exact ``bytes`` data as the body as it is, and serializes a
``dict`` or ``list`` under a JSON (or absent) content type with ``dumps_data`` instead of
``encode_data``.

The reference is binary mode written the general way: each header value through
``encode_header_value`` and ``canonical_string``, the body through ``encode_data``. A
seeded generator makes events with every kind of extension value (``int`` at the 32-bit
edges, ``bool``, ``bytes``, subclasses of ``str``, ``int`` and ``bytes``, values to
percent-encode) and of data (JSON values, values orjson refuses, ``str``, ``bytes``,
``bytearray``, ``memoryview``, a ``bytes`` subclass, empty) under JSON, text (with and
without a charset), binary and absent content types; the results, or the errors (type
and words), must be identical, header order included.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases per test (default 100,000).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from events.bindings import data as _data
from events.bindings import http
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent
from tests.fastpaths.test_codec_encode import Blob, Number, Text
from tests.fastpaths.test_http_headers import reference_to_binary

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
SEED = 20261204


EXTENSION_VALUES: list[Any] = [
    "acme", "a b", "caf\u00e9", "50%", 0, 3, -7, 2**31 - 1, -(2**31), True, False,
    b"\x00\xff", Text("t"), Number(4), Blob(b"\x01"),
]  # fmt: skip
DATA: list[Any] = [
    None, {"a": 1}, [1, 2], {"n": {"m": [1.5, None]}}, [], {}, {1: 2}, [float("nan")],
    {"big": 2**70}, "text", "caf\u00e9", "", b"\x00\xff", b"", bytearray(b"ba"),
    memoryview(b"mv"), Blob(b"blob"), 5, 1.5, True, {"s": {1, 2}},
]  # fmt: skip
CONTENT_TYPES: list[Any] = [
    None, "application/json", "text/json", "application/vnd.x+json", "Application/JSON",
    "application/json; charset=utf-8", "application/json; charset=latin-1", "text/plain",
    "text/plain; charset=latin-1", "text/plain; charset=ascii", "application/octet-stream",
    "application/xml", Text("application/json"),
]  # fmt: skip


def some_event(rng: random.Random) -> CloudEvent | None:
    extensions = {
        name: rng.choice(EXTENSION_VALUES)
        for name in rng.sample(["tenant", "priority", "flag", "blob", "n1"], rng.randrange(0, 4))
    }
    try:
        return CloudEvent(
            id=rng.choice(["id-1", "id 2", "i\u00e9"]) if rng.random() < 0.1 else "id-1",
            source="/sensors/north",
            type="com.example.x",
            subject=rng.choice([None, "room-12", "room 12"]),
            time=rng.choice([None, "2024-05-01T12:30:45.5Z"]),
            dataschema=rng.choice([None, "https://example.com/s"]),
            datacontenttype=rng.choice(CONTENT_TYPES),
            extensions=extensions,
            data=rng.choice(DATA),
        )
    except InvalidCloudEvent:
        return None  # an event the constructor refuses is no case for the encoder


def outcome(call: Callable[[], tuple[dict[str, str], bytes]]) -> Any:
    try:
        headers, body = call()
    except InvalidCloudEvent as exc:
        return "invalid", exc.attribute, exc.problem
    except Exception as exc:  # noqa: BLE001 -- any other failure must match too
        return type(exc).__name__, str(exc)
    return "ok", [(n, type(v), v) for n, v in headers.items()], type(body), body


def mismatches(encode: Callable[[CloudEvent], Any], cases: int) -> tuple[list[str], int, int]:
    rng = random.Random(SEED)
    found: list[str] = []
    done = refused = 0
    while done < cases:
        event = some_event(rng)
        if event is None:
            continue
        done += 1
        fast = outcome(lambda e=event: encode(e))
        general = outcome(lambda e=event: reference_to_binary(e))
        refused += general[0] != "ok"
        if fast != general and len(found) < 10:
            found.append(f"{event!r}: fast {fast}, general {general}")
    return found, done, refused


def test_to_binary_is_the_general_way() -> None:
    found, done, refused = mismatches(http.to_binary, CASES)
    print(f"\nto_binary: {done} cases, {refused} refused")
    assert found == []
    assert CASES // 20 < refused < CASES // 2, "both outcomes must be exercised"


def test_the_comparison_catches_planted_bugs() -> None:
    def bools_as_ints(event: CloudEvent) -> tuple[dict[str, str], bytes]:
        headers, body = http.to_binary(event)
        for name, value in event.extensions.items():
            if type(value) is bool:
                headers["ce-" + name] = str(int(value))
        return headers, body

    def json_whatever_the_type(event: CloudEvent) -> tuple[dict[str, str], bytes]:
        if isinstance(event.data, dict):  # forgets that the content type may not be JSON
            headers, _ = http.to_binary(event.evolve(data=None))
            return headers, _data.dumps_data(event.data)
        return http.to_binary(event)

    for planted in (bools_as_ints, json_whatever_the_type):
        found, _, _ = mismatches(planted, 3_000)
        assert found, f"{planted.__name__} went unnoticed"
