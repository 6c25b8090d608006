"""Fuzzing what comes from the outside into every decoder and every source's normalization.

Inputs: payloads (random bytes, JSON, text in many charsets, structured CloudEvents with
right and wrong members, JSON nested up to orjson's limit and past it, large values),
content types (with real, unknown and non-text charsets, control characters, raw bytes
as lone surrogates), and the headers or properties of each binding.

Properties, for every input:

- nothing escapes but our own errors: InvalidCloudEvent from a decoder, Rejected from a
  source's normalization;
- an error names what is wrong (the attribute, or a reason) in bounded length;
- an input costs at most ``CPU_SECONDS`` of CPU and ``memory_budget`` of allocation;
- an event that is accepted can be encoded for delivery, in HTTP binary and structured
  mode and in Dapr's envelope, and decodes back equal (binary mode: up to what its
  binding documents it cannot carry, see :func:`as_binary_mode_carries_it`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from events.bindings import http, kafka, mqtt, structured
from events.bindings.data import (
    canonical_string,
    decode_payload,
    encode_data,
    is_text_content_type,
)
from events.bus import envelope
from events.cloudevent import (
    CONTEXT_ATTRIBUTES,
    CloudEvent,
    from_attributes,
    is_json_content_type,
)
from events.errors import PROBLEM_LIMIT, InvalidCloudEvent
from events.functions.request import request_events
from sources import kafka_records, mqtt_decode, redis_entries
from sources.normalize import Origin, Rejected, wrap
from tests.fuzz.budget import FUZZ, TEST_TIMEOUT, cpu_budget

#: CPU seconds one input may take (decoding the largest generated input takes milliseconds).
CPU_SECONDS = 2.0
#: The longest error message a decoder may give.
MESSAGE_LIMIT = 2 * PROBLEM_LIMIT

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)


def memory_budget(size: int) -> int:
    """Peak Python allocation for an input of ``size`` bytes: parsed JSON takes some tens
    of bytes per byte of input (a 2-byte ``0,`` becomes a list slot and an int)."""
    return 64 * size + 8 * 1024 * 1024


# -- inputs -----------------------------------------------------------------------------

#: Characters as the wire hands them over: any text, raw bytes that are not UTF-8 (as the
#: lone surrogates aiohttp and surrogateescape turn them into), controls, quoting.
WIRE_CHAR = st.integers(1, 16).flatmap(
    lambda n: (
        st.characters()
        if n > 1
        else st.one_of(
            st.integers(0xDC80, 0xDCFF).map(chr),
            st.integers(0xD800, 0xDBFF).map(chr),
            st.sampled_from('\x00\r\n\t\x7f%"; =\\'),
        )
    )
)
WIRE_TEXT = st.text(WIRE_CHAR, max_size=40)
CHARSETS = [
    "utf-8", "UTF-8", "utf8", '"utf-8"', "utf-16", "UTF-16LE", "utf-32", "utf-8-sig",
    "latin-1", "ISO-8859-1", "us-ascii", "cp1252", "shift_jis", "euc-jp", "gb18030",
    "koi8-r", "cp037", "utf-7", "unicode_escape", "raw_unicode_escape", "idna", "punycode",
    "rot13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "undefined", "mbcs", "",
    "no-such-charset", "x" * 60,
]  # fmt: skip
MEDIA = [
    "application/json", "text/json", "application/vnd.x+json", "text/plain", "text/csv",
    "application/xml", "image/svg+xml", "application/octet-stream", "image/png",
    "application/cloudevents+json", "application/cloudevents-batch+json",
    "application/cloudevents+avro", "",
]  # fmt: skip
CONTENT_TYPES = st.one_of(
    st.sampled_from(MEDIA),
    st.builds(
        lambda media, cs, extra: f"{media}; charset={cs}{extra}",
        st.sampled_from(MEDIA),
        st.one_of(st.sampled_from(CHARSETS), WIRE_TEXT),
        st.sampled_from(["", "; v=1", ";charset=utf-8", ' ; q="a;b"']),
    ),
    WIRE_TEXT,
)
OPTIONAL_CONTENT_TYPE = st.none() | CONTENT_TYPES

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
TIMES = st.one_of(
    st.sampled_from(["2024-05-01T12:30:45Z", "2024-05-01T12:30:45.123+05:30"]),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat() + "+01:00"),
    st.sampled_from(["2024-02-30T00:00:00Z", "2024-05-01 12:30:45Z", "soon"]),
    WIRE_TEXT,
)


def _deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


DEEP = st.one_of(
    st.integers(200, 1100).map(_deep),
    st.integers(200, 1030).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


#: JSON values around the deepest an event can carry (253), up to what json.dumps writes.
DEEP_VALUE = st.integers(200, 900).map(_nested)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` three times in four, so that the rules past the first check are reached."""
    return st.integers(1, 4).flatmap(lambda n: bad if n == 4 else good)


def _member(value: Any) -> st.SearchStrategy:
    return mostly(value, JSON)  # the right kind of value, or any JSON value at all


#: Attribute text: mostly plain, sometimes what only the wire sends.
TEXT = mostly(st.text(min_size=1, max_size=20), WIRE_TEXT)


ATTRIBUTE_NAMES = st.one_of(
    st.sampled_from(["id", "source", "type", "specversion", "subject", "time", "dataschema",
                     "datacontenttype", "partitionkey", "traceparent", "data"]),
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    WIRE_TEXT,
)  # fmt: skip
#: Content types of well-formed events, and sometimes any at all.
DECLARED = mostly(
    st.sampled_from(
        ["application/json", "text/plain", "text/plain; charset=utf-16", "application/xml",
         "application/octet-stream", "application/json; charset=latin-1", "image/png"]
    ),
    CONTENT_TYPES,
)  # fmt: skip
#: Extensions, mostly well named and typed.
EXTENSIONS = st.dictionaries(
    mostly(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), ATTRIBUTE_NAMES),
    mostly(TEXT | st.integers(-(2**31), 2**31 - 1) | st.booleans(), JSON | st.integers()),
    max_size=2,
)
STRUCTURED_DOCUMENT = st.builds(
    lambda extensions, attributes: {**extensions, **attributes},
    EXTENSIONS,
    st.fixed_dictionaries(
        {
            "specversion": mostly(st.just("1.0"), JSON),
            "id": _member(TEXT),
            "source": _member(TEXT),
            "type": _member(TEXT),
        },
        optional={
            "datacontenttype": _member(DECLARED),
            "dataschema": _member(mostly(st.just("https://x/s.json"), WIRE_TEXT)),
            "subject": _member(TEXT),
            "time": _member(TIMES),
            "data": mostly(JSON, DEEP_VALUE),
            "data_base64": _member(
                st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
            ),
        },
    ),
)


def _encoded(pair: tuple[str, str]) -> bytes:
    text, charset = pair
    try:
        return text.encode(charset.strip('"'))
    except UnicodeError:
        return text.encode(charset.strip('"'), "ignore") if charset != "idna" else b""


def json_text(document: Any) -> bytes:
    """JSON text for ``document``; lone surrogates written as escapes (orjson refuses to)."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return json.dumps(document).encode()


BODIES = st.one_of(
    st.binary(max_size=512),
    JSON.map(orjson.dumps),
    STRUCTURED_DOCUMENT.map(json_text),
    st.lists(STRUCTURED_DOCUMENT, max_size=3).map(json_text),
    st.tuples(st.text(max_size=64), st.sampled_from(CHARSETS[:21])).map(_encoded),
    DEEP,
    st.builds(
        lambda data: json_text(
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": data}
        ),
        DEEP_VALUE,
    ),
    st.integers(0, 300_000).map(lambda n: b'"' + b"a" * n + b'"'),
)
#: Binary-mode attributes, mostly valid (so the data rules are reached), sometimes not.
ATTRIBUTES = st.fixed_dictionaries(
    {
        "specversion": mostly(st.just("1.0"), WIRE_TEXT),
        "id": mostly(st.just("e-1"), TEXT),
        "source": mostly(st.just("/s"), TEXT),
        "type": mostly(st.just("t"), TEXT),
    },
    optional={"time": TIMES, "subject": TEXT, "traceparent": TEXT},
).flatmap(
    lambda base: st.dictionaries(
        mostly(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), ATTRIBUTE_NAMES), TEXT, max_size=3
    ).map(lambda extra: {**extra, **base})
)


def _header_value(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            text,
            http.encode_header_value(
                "x", text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            ),
        ]
    )


# -- the properties ---------------------------------------------------------------------


def accepts(
    decode: Callable[[], Any], size: int, errors: tuple[type[Exception], ...]
) -> list[CloudEvent]:
    """Run one input through ``decode`` within its budgets; the events it gave, or none
    when it refused the input with one of ``errors`` (checked to say what, briefly)."""
    try:
        with cpu_budget(CPU_SECONDS, traced=True) as spent:
            result = decode()
    except errors as exc:
        _check_error(exc)
        event(f"refused: {_what(exc)}")
        result = None
    assert spent.peak_bytes <= memory_budget(size), f"{spent.peak_bytes} bytes for {size}"
    if result is None:
        return []
    event("accepted")
    events = result if isinstance(result, list) else [result]
    for each in events:
        assert isinstance(each, CloudEvent)
        delivers(each)
    return events


def _what(exc: Exception) -> str:
    """A statistics label: the error type and, for a spec attribute or data, which."""
    attribute = getattr(exc, "attribute", None)
    known = {*CONTEXT_ATTRIBUTES, "data", "data_base64", "body"}
    return f"{type(exc).__name__} {attribute if attribute in known else '(other)'}"


def _check_error(exc: Exception) -> None:
    if isinstance(exc, InvalidCloudEvent):
        # the attribute is named as the wire gave it: '' for a header "ce-" with no name
        assert isinstance(exc.attribute, str) and exc.problem, exc
    elif isinstance(exc, Rejected):
        assert exc.reason, exc
    assert len(str(exc)) <= MESSAGE_LIMIT, str(exc)[:300]


def delivers(event: CloudEvent) -> None:
    """``event`` encodes every way it can leave, and decodes back equal."""
    assert structured.from_json(structured.to_json(event)) == event
    assert http.from_http(*http.to_structured(event)) == [event]
    raw = envelope.encode(event, "topic", "pubsub")
    assert envelope.decode(raw, topic="topic", pubsub_name="pubsub", fallback_id="x") == event
    assert http.from_http(*http.to_binary(event)) == [as_binary_mode_carries_it(event)]


def as_binary_mode_carries_it(event: CloudEvent) -> CloudEvent:
    """``event`` as binary mode gives it back, by the binding's documented rules: extensions
    as their canonical strings; empty data as no data; bytes declared JSON or text read by
    that type; text declared neither as its bytes."""
    attributes = {
        **event.attributes(),
        **{k: canonical_string(v) for k, v in event.extensions.items()},
    }
    content_type, data = event.datacontenttype, event.data
    payload = encode_data(event)
    readable = is_json_content_type(content_type) or is_text_content_type(content_type)
    if not payload:
        data = None
    elif isinstance(data, bytes) and readable:
        data, attributes["datacontenttype"] = decode_payload(data, content_type)
    elif isinstance(data, str) and not readable:
        data = payload
    return from_attributes(attributes, data)


DECODING = (InvalidCloudEvent,)
NORMALIZING = (Rejected,)


@settings(**FUZZ)
@given(
    mostly(
        STRUCTURED_DOCUMENT.map(json_text),
        st.one_of(st.lists(STRUCTURED_DOCUMENT, max_size=3).map(json_text), BODIES),
    )
)
def test_structured_json_and_batches(body: bytes) -> None:
    accepts(lambda: structured.from_json(body), len(body), DECODING)
    accepts(lambda: structured.from_json_batch(body), len(body), DECODING)
    accepts(lambda: mqtt.from_mqtt3(body), len(body), DECODING)


@settings(**FUZZ)
@given(st.data(), ATTRIBUTES, OPTIONAL_CONTENT_TYPE, BODIES)
def test_http_binary_structured_and_batch(data, attributes, content_type, body) -> None:
    headers = {f"ce-{name}": data.draw(_header_value(value)) for name, value in attributes.items()}
    if content_type is not None:
        headers["Content-Type"] = content_type
    size = len(body) + sum(len(k) + len(v) for k, v in headers.items())
    accepts(lambda: http.from_http(headers, body), size, DECODING)
    path = data.draw(st.sampled_from(["/", "/orders/7"]))
    accepts(lambda: request_events(headers, body, path, "/functions/default/f"), size, DECODING)


@settings(**FUZZ)
@given(
    st.one_of(st.none(), st.binary(max_size=16)),
    st.one_of(st.none(), BODIES),
    ATTRIBUTES,
    st.one_of(
        st.none(),
        CONTENT_TYPES.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=16),
    ),
    st.lists(st.tuples(WIRE_TEXT, st.one_of(st.none(), st.binary(max_size=16))), max_size=2),
    st.booleans(),
)
def test_kafka_records(key, value, attributes, content_type, extra, binary) -> None:
    headers = list(extra)
    if binary:
        headers += [(f"ce_{n}", v.encode("utf-8", "surrogatepass")) for n, v in attributes.items()]
    if content_type is not None:
        headers.append(("content-type", content_type))
    size = len(value or b"") + sum(len(n) + len(v or b"") for n, v in headers)
    accepts(lambda: kafka.from_record(key, value, headers), size, DECODING)
    record = SimpleNamespace(
        topic="readings",
        partition=0,
        offset=7,
        timestamp=1714566645123,
        key=key,
        value=value,
        headers=headers,
    )
    accepts(lambda: kafka_records.to_event(record, "k:9092"), size, NORMALIZING)


def _unicode(text: str) -> str:
    """``text`` as paho hands strings over: valid UTF-8 only (it refuses a packet with a
    lone surrogate in a string as malformed)."""
    return text.encode("utf-8", "replace").decode()


@settings(**FUZZ)
@given(BODIES, OPTIONAL_CONTENT_TYPE, ATTRIBUTES, st.booleans(), st.text(min_size=1, max_size=20))
def test_mqtt_messages(payload, content_type, attributes, binary, topic) -> None:
    content_type = None if content_type is None else _unicode(content_type)
    properties = [(_unicode(n), _unicode(v)) for n, v in attributes.items()] if binary else []
    accepts(lambda: mqtt.from_mqtt5(payload, content_type, properties), len(payload), DECODING)
    accepts(lambda: mqtt.from_mqtt3(payload), len(payload), DECODING)
    accepts(
        lambda: mqtt_decode.to_event("m:1883", topic, payload, content_type, properties),
        len(payload),
        NORMALIZING,
    )


@settings(**FUZZ)
@given(
    BODIES,
    st.dictionaries(
        st.one_of(
            ATTRIBUTE_NAMES.map(lambda n: n.encode("utf-8", "surrogatepass")), st.binary(max_size=8)
        ),
        st.one_of(
            WIRE_TEXT.map(lambda v: v.encode("utf-8", "surrogatepass")), st.binary(max_size=16)
        ),
        max_size=5,
    ),
    st.sampled_from(["1714566645123-0", "0-1", "x-y"]),
)
def test_redis_entries_and_messages(payload, fields, entry_id) -> None:
    size = len(payload) + sum(len(k) + len(v) for k, v in fields.items())
    accepts(
        lambda: redis_entries.stream_event({b"data": payload}, "r:6379", "s", entry_id),
        size,
        NORMALIZING,
    )
    accepts(
        lambda: redis_entries.stream_event({**fields, b"data": payload}, "r:6379", "s", entry_id),
        size,
        NORMALIZING,
    )
    accepts(lambda: redis_entries.stream_event(fields, "r:6379", "s", entry_id), size, NORMALIZING)
    accepts(lambda: redis_entries.channel_event(payload, "r:6379", "news"), size, NORMALIZING)
    redis_entries.entry_bytes(fields)  # what a dead letter keeps never fails


@settings(**FUZZ)
@given(BODIES, OPTIONAL_CONTENT_TYPE, st.sampled_from(["mqtt", "kafka", "redis-stream", "http"]))
def test_wrapping_a_payload(payload, content_type, kind) -> None:
    origin = Origin(kind=kind, source="/where", id="id-1", subject="s", time="2024-05-01T12:30:45Z")
    events = accepts(lambda: wrap(payload, origin, content_type), len(payload), NORMALIZING)
    for each in events:
        assert (each.id, each.source, each.subject) == ("id-1", "/where", "s")
