"""The HTTP binary-mode header shortcuts (events/bindings/http.py) against the general way.

* Encoding tests all the header values at once for the spec's safe range, and
  percent-encodes value by value only when that fails.
* Decoding reads each header name through a cache of what it carries (instead of
  lower-casing every name), and decodes value by value only when the values together
  are outside the safe range.

The references below are the general way, written out as it was before the shortcuts:
each value through ``encode_header_value`` / ``decode_header_value``, names lower-cased
into a dict. A seeded generator makes events and header maps on every edge (space,
``%``, ``"``, tabs and other controls, non-ASCII, lone surrogates, quoted strings, names
in any case and given twice, ``ce-datacontenttype``, no ``ce-specversion``); the
results, or the errors, must be identical, extension order included.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases per test (default 100,000).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Any

from events.bindings import data as _data
from events.bindings import http
from events.cloudevent import CONTEXT_ATTRIBUTES, CloudEvent
from events.errors import InvalidCloudEvent

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
SEED = 20240502
SAFE_TEXT = ["a", "/sensors/north", "com.example.x", "2024-05-01T12:30:45Z", "v1", "x-y_z~"]
EDGE_TEXT = [
    "a b", " lead", "trail ", "50%", "%41", '"quoted"', '"q\\"x"', "tab\tin", "\x7f",
    "line\nbreak", "é", "ü\U0001f600", "bad\ud800", "%C3%A9", "%FF", "%zz", "\x1f", "",
]  # fmt: skip
TEXT_EDGES = 0.04


def text(rng: random.Random) -> str:
    return rng.choice(EDGE_TEXT if rng.random() < TEXT_EDGES else SAFE_TEXT)


def outcome(call: Any) -> Any:
    """What a codec call gives: its result, or the error it raises (type and words)."""
    try:
        return "ok", call()
    except InvalidCloudEvent as exc:
        return "invalid", exc.attribute, exc.problem
    except Exception as exc:  # noqa: BLE001 -- any other failure must match too
        return type(exc).__name__, str(exc)


# -- encoding ------------------------------------------------------------------------------


def reference_to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Binary mode as written before the shortcut: each value encoded on its own."""
    headers = {}
    for name in CONTEXT_ATTRIBUTES:
        value = getattr(event, name)
        if name != "datacontenttype" and value is not None:
            headers["ce-" + name] = http.encode_header_value(name, value)
    for name, value in event.extensions.items():
        headers["ce-" + name] = http.encode_header_value(name, _data.canonical_string(value))
    if event.datacontenttype is not None:
        headers["Content-Type"] = event.datacontenttype
    return headers, _data.encode_data(event) or b""


def some_event(rng: random.Random) -> CloudEvent | None:
    extensions: dict[str, Any] = {}
    for name in rng.sample(["zeta", "partitionkey", "alpha", "n1", "flag", "blob"], 3):
        roll = rng.random()
        extensions[name] = (
            text(rng) if roll < 0.6 else rng.choice([0, -7, 2**31 - 1, True, False, b"\xff\x00"])
        )
    try:
        return CloudEvent(
            id=text(rng),
            source=text(rng),
            type=text(rng),
            subject=rng.choice([None, text(rng)]),
            time=rng.choice([None, "2024-05-01T12:30:45.5Z"]),
            dataschema=rng.choice([None, "https://example.com/s", "urn:x y"]),
            datacontenttype=rng.choice([None, "application/json", "text/plain; charset=utf-8"]),
            extensions=extensions,
            data=rng.choice([None, {"a": 1}, "text"]),
        )
    except InvalidCloudEvent:
        return None  # an event the constructor refuses is no case for the encoder


def as_items(result: Any) -> Any:
    if result[0] == "ok":
        headers, body = result[1]
        return "ok", list(headers.items()), body
    return result


def test_encoding_all_headers_at_once_is_encoding_each() -> None:
    rng = random.Random(SEED)
    cases = unsafe = 0
    mismatches = []
    while cases < CASES:
        event = some_event(rng)
        if event is None:
            continue
        cases += 1
        fast = as_items(outcome(lambda e=event: http.to_binary(e)))
        general = as_items(outcome(lambda e=event: reference_to_binary(e)))
        unsafe += fast[0] != "ok" or any("%" in v for _, v in fast[1])
        if fast != general and len(mismatches) < 10:
            mismatches.append(f"{event!r}: fast {fast}, general {general}")
    print(f"\nencode: {cases} cases, {unsafe} needing percent-encoding or refused")
    assert mismatches == []
    assert cases // 20 < unsafe < cases * 9 // 10, "both sides of the shortcut must be exercised"


# -- decoding ------------------------------------------------------------------------------


def reference_from_http(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """``from_http`` as written before the shortcut: names lower-cased into a dict."""
    lower = {name.lower(): value for name, value in headers.items()}
    content_type = lower.get("content-type")
    media = _data.media_type(content_type)
    if media.startswith(_data.BATCH_PREFIX) or media.startswith(_data.STRUCTURED_PREFIX):
        return http.from_http(headers, body)  # not the shortcut's business
    if "ce-specversion" not in lower:
        raise InvalidCloudEvent("specversion", f"not a CloudEvent ({content_type!r})")
    if "ce-datacontenttype" in lower:
        raise InvalidCloudEvent("datacontenttype", "must be sent as Content-Type")
    attributes = {
        name[3:]: http.decode_header_value(name[3:], value)
        for name, value in lower.items()
        if name.startswith("ce-")
    }
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    return [_data.from_binary(attributes, body)]


def cased(rng: random.Random, name: str) -> str:
    return rng.choice([name, name.upper(), name.title(), name.capitalize()])


def some_headers(rng: random.Random) -> dict[str, str]:
    headers: dict[str, str] = {}
    names = ["id", "source", "type", "specversion", "subject", "time", "tenant", "n1"]
    for name in rng.sample(names, len(names)):
        if rng.random() < (0.03 if name in ("id", "source", "type", "specversion") else 0.4):
            continue
        if name == "specversion":
            value = "1.0" if rng.random() < 0.97 else text(rng)
        elif name == "time":
            value = "2024-05-01T12:30:45.5Z" if rng.random() < 0.95 else text(rng)
        else:
            value = text(rng)
        headers[cased(rng, "ce-" + name)] = value
    if rng.random() < 0.3:  # the same name again in another case: the last value wins
        headers[cased(rng, "ce-" + rng.choice(names))] = text(rng)
    if rng.random() < 0.02:
        headers["ce-datacontenttype"] = "text/plain"
    if rng.random() < 0.7:
        content_type = rng.choice(["application/json", "text/plain", "application/x"])
        headers[cased(rng, "content-type")] = content_type
    for other in rng.sample(["Host", "Content-Length", "traceparent", "X-Ce-Id"], 2):
        headers[other] = text(rng)
    return headers


def events_as_values(result: Any) -> Any:
    if result[0] == "ok":
        return "ok", [(e, list(e.extensions.items())) for e in result[1]]
    if result[0] == "invalid" and result[1] in ("specversion", "datacontenttype"):
        return result[:2]  # the reference words these two shorter
    return result


def test_decoding_through_the_name_cache_is_decoding_lower_cased_names() -> None:
    rng = random.Random(SEED + 1)
    decoded = refused = encoded = 0
    mismatches = []
    for _ in range(CASES):
        headers = some_headers(rng)
        body = rng.choice([b"", b'{"a": 1}', b"text"])
        fast = events_as_values(outcome(lambda h=headers, b=body: http.from_http(h, b)))
        general = events_as_values(outcome(lambda h=headers, b=body: reference_from_http(h, b)))
        decoded += fast[0] == "ok"
        ce_values = "".join(v for k, v in headers.items() if k.lower().startswith("ce-"))
        encoded += not http._safe(ce_values)
        refused += fast[0] != "ok"
        if fast != general and len(mismatches) < 10:
            mismatches.append(f"{headers!r} {body!r}: fast {fast}, general {general}")
    print(
        f"\ndecode: {CASES} cases, {decoded} decoded, {refused} refused, "
        f"{encoded} with values to decode"
    )
    assert mismatches == []
    assert decoded > CASES // 4 and refused > CASES // 20 and encoded > CASES // 20
