"""The decoders' shortcuts of issue 13 against the general way.

* ``structured.from_dict`` hands JSON data under a plain (or absent) content type, and
  bytes of a plain type that is neither JSON nor text, straight to ``from_attributes``;
* ``data.from_binary`` reads a payload under a plain (or absent) content type without
  ``decode_payload`` (orjson inline for JSON, the bytes as they are for other non-text);
* ``http.from_http`` remembers the mode each Content-Type selects, and tests the
  ``ce-`` values for the safe range inline.

The references are the code as written before the shortcuts. A seeded generator makes
documents, attribute maps and header maps on every edge (content types with and without
parameters, in any case, not a str, a str subclass, naming a charset that is unknown or
not text; data of every JSON type, ``bytes``, ``data_base64`` valid, invalid, not ASCII
or not a str, both members at once; payloads that are not JSON, not UTF-8, nested past
what can be written, ``bytearray``, ``memoryview`` and ``str``; CloudEvents formats other
than JSON, batches, values to percent-decode), and clears the mode cache now and then so
that both a cold and a warm cache are compared. The results, or the errors (type and
words), must be identical, extension order included.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases per test (default 100,000).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from events.bindings import data as _data
from events.bindings import http, structured
from events.cloudevent import CONTEXT_ATTRIBUTES, CloudEvent, from_attributes, is_json_content_type
from events.errors import InvalidCloudEvent
from events.errors import quote as shown

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
SEED = 20261203


class Text(str):
    """A str subclass: must take the general path."""


DEEP = b"[" * 300 + b"]" * 300  # nested past what orjson can write, longer than 506 bytes
WIDE = b"[" + b",".join([b"[1]"] * 200) + b"]"  # many brackets, shallow: must be accepted
CONTENT_TYPES: list[Any] = [
    None, "application/json", "text/json", "application/vnd.x+json", "Application/JSON",
    " application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "text/plain", "text/plain; charset=latin-1", "text/plain; charset=rot13",
    "application/octet-stream", "application/octet-stream; x=y", "application/xml",
    "image/png", "", 5, Text("application/json"), Text("application/octet-stream"),
    "application/cloudevents+json",
]  # fmt: skip
BODIES: list[Any] = [
    b"", b'{"a": 1}', b"[1, 2]", b'"text"', b"not json", b"\xff\xfe\x00", b"caf\xc3\xa9",
    DEEP, WIDE, bytearray(b'{"a": 2}'), memoryview(b"[3]"), memoryview(b"\xff"), '{"s": 1}',
]  # fmt: skip
DATA: list[Any] = [
    {"a": 1}, [1, 2], "text", "caf\u00e9", 5, 1.5, True, None, b"\x00\xff", orjson.loads(DEEP),
]  # fmt: skip
BASE64: list[Any] = [None, "AAEC", "AAE=", "not base64!", "\u00e9AA=", 5, "", b"AAEC"]


def outcome(call: Callable[[], Any]) -> Any:
    """An event as everything a reader can see of it (types included), or the error."""
    try:
        result = call()
    except InvalidCloudEvent as exc:
        return "invalid", exc.attribute, exc.problem
    except Exception as exc:  # noqa: BLE001 -- any other failure must match too
        return type(exc).__name__, str(exc)
    events = result if isinstance(result, list) else [result]
    return "ok", [seen(event) for event in events]


def seen(event: CloudEvent) -> Any:
    return (
        type(event),
        [(name, type(getattr(event, name)), getattr(event, name)) for name in CONTEXT_ATTRIBUTES],
        list(event.extensions.items()),
        type(event.data),
        repr(event.data),
    )


def pick(rng: random.Random, usual: Any, others: list[Any], edge: float = 0.1) -> Any:
    return rng.choice(others) if rng.random() < edge else usual


TIMES = ["2024-05-01T12:30:45+02:00", "2024-05-01t12:30:45z", "2024-02-30T12:30:45Z", "x"]


def some_attributes(rng: random.Random) -> dict[str, Any]:
    """Attribute maps, mostly valid, with the odd invalid one."""
    attributes: dict[str, Any] = {
        "id": rng.choice(["a", "0b0e-1", ""]) if rng.random() < 0.05 else "id-1",
        "source": "/sensors/north",
        "specversion": "1.0" if rng.random() < 0.97 else "0.3",
        "type": "com.example.x",
    }
    if rng.random() < 0.02:
        del attributes[rng.choice(list(attributes))]
    if rng.random() < 0.6:
        attributes["time"] = pick(rng, "2024-05-01T12:30:45.123456Z", TIMES)
    if rng.random() < 0.3:
        attributes["subject"] = pick(rng, "room-12", ["", 5])
    if rng.random() < 0.2:
        attributes["dataschema"] = pick(rng, "https://x/s.json", ["urn:x", "no scheme"])
    for name in rng.sample(["tenant", "priority", "flag", "Bad"], rng.randrange(0, 3)):
        if name == "Bad" and rng.random() < 0.8:
            continue
        attributes[name] = pick(rng, "acme", [3, 2**31, True, None, 1.5])
    keys = list(attributes)
    rng.shuffle(keys)
    return {key: attributes[key] for key in keys}


# -- structured.from_dict --------------------------------------------------------------------


def reference_from_dict(d: Mapping[str, Any], *, owned: bool = False) -> CloudEvent:
    """``structured.from_dict`` as written before the shortcuts."""
    if type(d) is dict:
        attributes = d if owned else d.copy()
    elif isinstance(d, Mapping):
        attributes = d if owned and isinstance(d, dict) else dict(d)
    else:
        raise InvalidCloudEvent(
            "body", f"a structured CloudEvent must be a JSON object, got {type(d).__name__}"
        )
    data = attributes.pop("data", None)
    data_base64 = attributes.pop("data_base64", None)
    if data_base64 is None and data is None:
        return from_attributes(attributes, owned=True)
    content_type = attributes.get("datacontenttype")
    plain = type(content_type) is str and ";" not in content_type
    if data_base64 is None and type(data) is str and (plain or content_type is None):
        return from_attributes(attributes, data, owned=True)
    is_json = not isinstance(content_type, str) or is_json_content_type(content_type)
    data = structured._read_data(data, data_base64, content_type, is_json)
    if data_base64 is not None or not plain:
        declared = structured._as_delivered(data, content_type, is_json, data_base64 is not None)
        if declared is not content_type:
            attributes["datacontenttype"] = declared
    return from_attributes(attributes, data, owned=True)


def some_document(rng: random.Random) -> dict[str, Any]:
    document = some_attributes(rng)
    content_type = rng.choice(CONTENT_TYPES)
    if content_type is not None or rng.random() < 0.5:
        document["datacontenttype"] = content_type
    roll = rng.random()
    if roll < 0.45:
        document["data"] = rng.choice(DATA)
    elif roll < 0.85:
        document["data_base64"] = rng.choice(BASE64)
    elif roll < 0.9:
        document["data"] = rng.choice(DATA)
        document["data_base64"] = rng.choice(BASE64)
    return document


def test_from_dict_is_the_general_way() -> None:
    rng = random.Random(SEED)
    found: list[str] = []
    built = refused = 0
    for _ in range(CASES):
        document = some_document(rng)
        general = outcome(lambda d=document: reference_from_dict(dict(d), owned=True))
        calls = [
            lambda d=document: structured.from_dict(d),
            lambda d=document: structured.from_dict(dict(d), owned=True),
        ]
        for call in calls:
            fast = outcome(call)
            if fast != general and len(found) < 10:
                found.append(f"{document!r}: fast {fast}, general {general}")
        built += general[0] == "ok"
        refused += general[0] != "ok"
    print(f"\nfrom_dict: {CASES} cases, {built} built, {refused} refused")
    assert found == []
    assert built > CASES // 4 and refused > CASES // 10, "both outcomes must be exercised"


# -- data.from_binary ------------------------------------------------------------------------


def reference_from_binary(
    attributes: Mapping[str, Any], body: Any, *, owned: bool = False
) -> CloudEvent:
    """``data.from_binary`` as written before the shortcut: every payload through
    ``decode_payload``."""
    if not body:
        return from_attributes(attributes, owned=owned)
    content_type = attributes.get("datacontenttype")
    data, declared = _data.decode_payload(body, content_type)
    if declared is not content_type:
        if owned and type(attributes) is dict:
            attributes["datacontenttype"] = declared
        else:
            attributes = {**attributes, "datacontenttype": declared}
            owned = True
    return from_attributes(attributes, data, owned=owned)


def test_from_binary_is_the_general_way() -> None:
    rng = random.Random(SEED + 1)
    found: list[str] = []
    built = refused = 0
    for _ in range(CASES):
        attributes = some_attributes(rng)
        content_type = rng.choice(CONTENT_TYPES)
        if content_type is not None or rng.random() < 0.5:
            attributes["datacontenttype"] = content_type
        body = rng.choice(BODIES)
        general = outcome(lambda a=attributes, b=body: reference_from_binary(dict(a), b))
        calls = [
            lambda a=attributes, b=body: _data.from_binary(a, b),
            lambda a=attributes, b=body: _data.from_binary(dict(a), b, owned=True),
        ]
        for call in calls:
            fast = outcome(call)
            if fast != general and len(found) < 10:
                found.append(f"{attributes!r} {body!r}: fast {fast}, general {general}")
        built += general[0] == "ok"
        refused += general[0] != "ok"
    print(f"\nfrom_binary: {CASES} cases, {built} built, {refused} refused")
    assert found == []
    assert built > CASES // 4 and refused > CASES // 10, "both outcomes must be exercised"


# -- http.from_http --------------------------------------------------------------------------


def reference_from_http(headers: Mapping[str, str], body: Any) -> list[CloudEvent]:
    """``http.from_http`` as written before the shortcuts: the media type tested on each
    call, and the values tested for the safe range by ``_safe``."""
    content_type, attributes = http._read_headers(headers)
    media = http._media(content_type)
    if media.startswith(_data.BATCH_PREFIX):
        _data.require_json_format(media, http.BATCH_CONTENT_TYPE)
        return structured.from_json_batch(body)
    if media.startswith(_data.STRUCTURED_PREFIX):
        _data.require_json_format(media, http.STRUCTURED_CONTENT_TYPE)
        return [structured.from_json(body)]
    if "specversion" not in attributes:
        raise InvalidCloudEvent(
            "specversion",
            f"not a CloudEvent: no ce-specversion header and Content-Type "
            f"{shown(content_type)} is not a CloudEvents format",
        )
    if "datacontenttype" in attributes:
        raise InvalidCloudEvent(
            "datacontenttype", "must be sent as Content-Type, not as a ce-datacontenttype header"
        )
    try:
        unchanged = http._safe("".join(attributes.values()))
    except TypeError:
        unchanged = False
    if not unchanged:
        attributes = {n: http.decode_header_value(n, v) for n, v in attributes.items()}
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    return [reference_from_binary(attributes, body, owned=True)]


HTTP_CONTENT_TYPES: list[Any] = [
    "application/cloudevents+json", "application/cloudevents+json; charset=utf-8",
    "APPLICATION/CloudEvents+JSON", "application/cloudevents+avro", "application/cloudevents",
    "application/cloudevents-batch+json", "application/cloudevents-batch+xml",
    Text("application/cloudevents+json"), None, "application/json", "text/plain",
    "application/octet-stream", "text/plain; charset=latin-1",
]  # fmt: skip
HEADER_VALUES = ["a", "/sensors/north", "a b", "50%25", '"quoted"', "caf%C3%A9", "%FF", "\x7f", 5]


def some_message(rng: random.Random) -> tuple[dict[str, Any], Any]:
    headers: dict[str, Any] = {}
    content_type = rng.choice(HTTP_CONTENT_TYPES)
    if content_type is not None:
        headers[rng.choice(["Content-Type", "content-type"])] = content_type
    media = _data.media_type(content_type) if isinstance(content_type, str) else ""
    if media.startswith(_data.STRUCTURED_PREFIX):
        document = some_document(rng)
        try:
            body: Any = orjson.dumps(document, default=str)
        except orjson.JSONEncodeError:  # data nested too deep to write: write it by hand
            body = b'{"id": "a", "source": "/s", "type": "t", "specversion": "1.0", "data": '
            body += DEEP + b"}"
        if rng.random() < 0.1:
            body = rng.choice([b"{}", b"[1]", b"not json", b""])
        elif media.startswith(_data.BATCH_PREFIX):
            body = b"[" + body + b"]"
        return headers, body
    for name, value in some_attributes(rng).items():
        if rng.random() < 0.03:
            value = rng.choice(HEADER_VALUES)
        headers["ce-" + name] = value if isinstance(value, str) else str(value)
    if rng.random() < 0.02:
        headers["ce-datacontenttype"] = "text/plain"
    if rng.random() < 0.02:
        headers["ce-n1"] = 5
    headers["Host"] = "example.com"
    return headers, rng.choice(BODIES)


def test_from_http_is_the_general_way() -> None:
    rng = random.Random(SEED + 2)
    found: list[str] = []
    built = refused = 0
    for _ in range(CASES):
        if rng.random() < 0.01:
            http._MODES.clear()  # a cold cache as well as a warm one
        headers, body = some_message(rng)
        general = outcome(lambda h=headers, b=body: reference_from_http(h, b))
        fast = outcome(lambda h=headers, b=body: http.from_http(h, b))
        if fast != general and len(found) < 10:
            found.append(f"{headers!r} {body!r}: fast {fast}, general {general}")
        built += general[0] == "ok"
        refused += general[0] != "ok"
    print(f"\nfrom_http: {CASES} cases, {built} decoded, {refused} refused")
    assert found == []
    assert built > CASES // 4 and refused > CASES // 10, "both outcomes must be exercised"


def test_the_comparison_catches_planted_bugs() -> None:
    """Plausible slips in the shortcuts; the generators find each."""

    def ignores_data_base64(d: Mapping[str, Any], *, owned: bool = False) -> CloudEvent:
        d = {k: v for k, v in d.items() if k != "data_base64"}
        return structured.from_dict(d, owned=owned)

    def skips_the_depth_check(attributes: Any, body: Any, *, owned: bool = False) -> CloudEvent:
        if body == DEEP:
            return from_attributes(attributes, orjson.loads(body), owned=owned)
        return _data.from_binary(attributes, body, owned=owned)

    rng = random.Random(SEED + 3)
    caught_dict = caught_binary = False
    for _ in range(5_000):
        document = some_document(rng)
        if outcome(lambda d=document: ignores_data_base64(dict(d))) != outcome(
            lambda d=document: reference_from_dict(dict(d))
        ):
            caught_dict = True
        attributes = some_attributes(rng)
        body = rng.choice(BODIES)
        if outcome(lambda a=attributes, b=body: skips_the_depth_check(dict(a), b)) != outcome(
            lambda a=attributes, b=body: reference_from_binary(dict(a), b)
        ):
            caught_binary = True
    assert caught_dict and caught_binary
