"""The encoders' shortcuts against the general way.

* ``structured.to_dict`` copies the extensions in one C call when none is ``bytes``
  (tested by the set of value types), and tests ``str`` data before the content type;
* ``data.encode_data`` returns exact ``bytes`` data as it is and calls orjson inline.

The references are the code as written before the shortcuts. A seeded generator makes
events with every kind of extension value (``bytes`` and subclasses of ``str``, ``int``
and ``bytes`` included) and of data (JSON values, ``str``, ``bytes``, ``bytearray``,
``memoryview``, unserializable values, non-JSON content types with non-text data); the
results, or the errors, must be identical (for ``to_dict``, key order included).
``tests/fastpaths/test_http_headers.py`` covers ``http.to_binary`` the same way.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases per test (default 100,000).
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Callable
from typing import Any

import orjson

from events.bindings import data as _data
from events.bindings import structured
from events.bindings.charsets import charset
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent, quote

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
SEED = 20241205


class Text(str):
    pass


class Number(int):
    pass


class Blob(bytes):
    pass


def reference_to_dict(event: CloudEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "specversion": event.specversion,
        "type": event.type,
    }
    for name in ("datacontenttype", "dataschema", "subject", "time"):
        if (value := getattr(event, name)) is not None:
            out[name] = value
    for name, value in event.extensions.items():
        out[name] = base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
    data = event.data
    if data is None:
        return out
    if isinstance(data, bytes | bytearray | memoryview):
        out["data_base64"] = base64.b64encode(data).decode("ascii")
    elif event.is_json or isinstance(data, str):
        out["data"] = data
    else:
        raise InvalidCloudEvent(
            "data",
            f"must be str or bytes for the non-JSON content type "
            f"{quote(event.datacontenttype)}, got {type(data).__name__}",
        )
    return out


def reference_encode_data(event: CloudEvent) -> bytes | None:
    data = event.data
    if data is None:
        return None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if event.is_json:
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError as exc:
            raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None
    if isinstance(data, str):
        try:
            return data.encode(charset(event.datacontenttype))
        except UnicodeEncodeError as exc:
            raise InvalidCloudEvent("data", f"cannot be encoded as declared: {exc}") from None
    raise InvalidCloudEvent(
        "data",
        f"must be str or bytes for the non-JSON content type "
        f"{quote(event.datacontenttype)}, got {type(data).__name__}",
    )


EXTENSION_VALUES = ["acme", 3, True, False, b"\x00\xff", Text("t"), Number(4), Blob(b"b")]
DATA = [
    None, {"a": [1, 2.5, None]}, [1, "x"], "text", "", "é", b"\x00\x01", bytearray(b"ab"),
    memoryview(b"mv"), Blob(b"z"), Text("sub"), 3, 2.5, True, {1: "int key"}, {"s": {1, 2}},
    object(), 2**70,
]  # fmt: skip
CONTENT_TYPES = [
    None, "application/json", "application/vnd.x+json", "text/plain",
    "text/plain; charset=latin-1", "application/octet-stream", Text("application/json"),
]  # fmt: skip


def some_event(rng: random.Random) -> CloudEvent:
    names = rng.sample(["tenant", "n1", "priority", "blob", "zeta"], rng.randrange(0, 4))
    return CloudEvent(
        id="e1",
        source="/s",
        type="t",
        datacontenttype=rng.choice(CONTENT_TYPES),
        subject=rng.choice([None, "sub"]),
        time=rng.choice([None, "2024-05-01T12:30:45Z"]),
        dataschema=rng.choice([None, "https://example.com/s"]),
        extensions={name: rng.choice(EXTENSION_VALUES) for name in names},
        data=rng.choice(DATA),
    )


def outcome(call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except InvalidCloudEvent as exc:
        return "invalid", exc.attribute, exc.problem
    except Exception as exc:  # noqa: BLE001 -- any other failure must match too
        return type(exc).__name__, str(exc)
    if isinstance(result, dict):
        return "ok", list(result.items()), [type(v) for v in result.values()]
    return "ok", result, type(result)


def mismatches(
    fast: Callable[[CloudEvent], Any], general: Callable[[CloudEvent], Any], cases: int
) -> tuple[list[str], int]:
    rng = random.Random(SEED)
    found: list[str] = []
    refused = 0
    for _ in range(cases):
        event = some_event(rng)
        mine = outcome(lambda e=event: fast(e))
        theirs = outcome(lambda e=event: general(e))
        refused += theirs[0] != "ok"
        if mine != theirs and len(found) < 10:
            found.append(f"{event!r}: fast {mine}, general {theirs}")
    return found, refused


def test_to_dict_is_the_general_way() -> None:
    found, refused = mismatches(structured.to_dict, reference_to_dict, CASES)
    assert found == []
    assert CASES // 50 < refused < CASES // 2


def test_encode_data_is_the_general_way() -> None:
    found, refused = mismatches(_data.encode_data, reference_encode_data, CASES)
    assert found == []
    assert CASES // 50 < refused < CASES // 2


def test_the_comparison_catches_planted_bugs() -> None:
    def forgets_bytes_subclasses(event: CloudEvent) -> dict[str, Any]:
        out = structured.to_dict(event)
        for name, value in event.extensions.items():
            if type(value) is Blob:
                out[name] = value
        return out

    def writes_bytearray_as_is(event: CloudEvent) -> Any:
        return event.data if type(event.data) is bytearray else _data.encode_data(event)

    assert mismatches(forgets_bytes_subclasses, reference_to_dict, 3_000)[0]
    assert mismatches(writes_bytearray_as_is, reference_encode_data, 3_000)[0]
