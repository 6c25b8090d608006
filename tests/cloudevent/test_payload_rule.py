"""The one rule for reading a payload (events.bindings.data.decode_payload and
events.bindings.charsets), as every binding applies it, and what it refuses by name."""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import string
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.bindings import data, http, kafka, mqtt, structured
from events.bindings.charsets import text_codec
from events.bindings.data import MAX_DATA_DEPTH, decode_payload, encode_data
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent
from tests.cloudevent.cloudevent_samples import make

_HEADERS = [("id", "1"), ("source", "/s"), ("type", "t"), ("specversion", "1.0")]

#: Every binary-mode decoder, from (content type, payload).
BINARY_DECODERS: dict[str, Callable[[str, bytes], CloudEvent]] = {
    "http": lambda ct, body: http.from_http(
        {**{f"ce-{k}": v for k, v in _HEADERS}, "Content-Type": ct}, body
    )[0],
    "kafka": lambda ct, body: kafka.from_record(
        None, body, [*((f"ce_{k}", v.encode()) for k, v in _HEADERS), ("content-type", ct.encode())]
    ),
    "mqtt5": lambda ct, body: mqtt.from_mqtt5(body, ct, _HEADERS),
}


def _error(call: Callable[[], object], attribute: str) -> InvalidCloudEvent:
    with pytest.raises(InvalidCloudEvent) as info:
        call()
    assert info.value.attribute == attribute, info.value
    return info.value


@pytest.mark.parametrize("decode", BINARY_DECODERS.values(), ids=BINARY_DECODERS.keys())
@pytest.mark.parametrize("name", ["rot13", "base64", "hex", "zlib", "bz2", "uu", "undefined"])
def test_a_charset_that_is_not_a_text_encoding_names_datacontenttype(decode, name: str) -> None:
    error = _error(lambda: decode(f"text/plain; charset={name}", b"hello"), "datacontenttype")
    assert f"charset {name!r}, which is not a text encoding" in str(error)


@pytest.mark.parametrize("name", ["rot13", "base64", "undefined", "no-such-charset"])
def test_encoding_text_in_a_charset_that_is_not_a_text_encoding_names_datacontenttype(
    name: str,
) -> None:
    event = make(datacontenttype=f"text/plain; charset={name}", data="x")
    _error(lambda: encode_data(event), "datacontenttype")


@pytest.mark.parametrize("decode", BINARY_DECODERS.values(), ids=BINARY_DECODERS.keys())
def test_text_is_decoded_by_its_charset_and_keeps_its_content_type(decode) -> None:
    for content_type, text, codec in [
        ("text/plain; charset=utf-16", "héllo ☃ 😀", "utf-16"),
        ("text/plain; charset=latin1", "café", "latin-1"),
        ("text/xml; charset=cp1252", "<€/>", "cp1252"),
    ]:
        event = decode(content_type, text.encode(codec))
        assert (event.data, event.datacontenttype) == (text, content_type)
        assert encode_data(event).decode(codec) == text, "written back in its charset"


@pytest.mark.parametrize("decode", BINARY_DECODERS.values(), ids=BINARY_DECODERS.keys())
def test_json_in_another_charset_is_read_and_re_declared_utf8(decode) -> None:
    event = decode("application/json; charset=UTF-16LE; v=1", '{"é": [1]}'.encode("utf-16-le"))
    assert event.data == {"é": [1]}
    assert event.datacontenttype == "application/json; v=1; charset=utf-8"
    assert encode_data(event) == '{"é":[1]}'.encode(), "every encoder writes JSON as UTF-8"
    same = decode("application/json; charset=utf-8", b"[1]")
    assert same.datacontenttype == "application/json; charset=utf-8", "UTF-8 stays as declared"


@pytest.mark.parametrize(
    ("content_type", "body", "problem"),
    [
        (
            "text/plain",
            b"caf\xe9",
            "is not utf-8 text as declared (unexpected end of data at byte 3)",
        ),
        ("text/plain; charset=utf-16", b"\x00\xd8", "is not utf-16 text as declared"),
        ("text/plain; charset=ascii", b"\x80", "is not ascii text as declared"),
        ("text/plain; charset=unicode_escape", b"\\ud800", "cannot be written back unchanged"),
        ("text/plain; charset=utf-7", b"+2AA-", "cannot be written back unchanged"),
    ],
)
def test_text_that_does_not_decode_or_cannot_be_written_back_names_data(
    content_type: str, body: bytes, problem: str
) -> None:
    for decode in BINARY_DECODERS.values():
        assert problem in str(_error(lambda: decode(content_type, body), "data"))  # noqa: B023


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _structured(depth: int) -> bytes:
    return b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":%s}' % nested(depth)


DEPTH_DECODERS: dict[str, Callable[[bytes], object]] = {
    "structured": lambda body: structured.from_json(body.replace(b"DATA", b"")),
    "batch": lambda body: structured.from_json_batch(b"[" + body + b"]"),
    "http-structured": lambda body: http.from_http(
        {"Content-Type": "application/cloudevents+json"}, body
    ),
    "kafka-structured": lambda body: kafka.from_record(
        None, body, [("content-type", b"application/cloudevents+json")]
    ),
    "mqtt3": lambda body: mqtt.from_mqtt3(body),
}


@pytest.mark.parametrize("decode", DEPTH_DECODERS.values(), ids=DEPTH_DECODERS.keys())
def test_structured_data_nested_deeper_than_can_be_written_names_data(decode) -> None:
    decode(_structured(MAX_DATA_DEPTH))
    error = _error(lambda: decode(_structured(MAX_DATA_DEPTH + 1)), "data")
    assert f"nested more than {MAX_DATA_DEPTH} levels deep" in str(error)


@pytest.mark.parametrize("decode", BINARY_DECODERS.values(), ids=BINARY_DECODERS.keys())
def test_binary_data_nested_deeper_than_can_be_written_names_data(decode) -> None:
    event = decode("application/json", nested(MAX_DATA_DEPTH))
    assert structured.from_json(structured.to_json(event)) == event, "as deep as can be written"
    _error(lambda: decode("application/json", nested(MAX_DATA_DEPTH + 1)), "data")
    _error(lambda: data.sniff_data(nested(MAX_DATA_DEPTH + 1)), "data")


def test_many_brackets_that_are_not_deep_are_taken() -> None:
    wide = orjson.dumps([{"a": [1]} for _ in range(2000)] + ["[[[[" * 100])
    assert decode_payload(wide, "application/json")[0][0] == {"a": [1]}


def test_every_standard_charset_name_is_known_and_unknown_names_are_not_looked_up() -> None:
    for name in {*encodings.aliases.aliases, *encodings.aliases.aliases.values()}:
        try:
            info = codecs.lookup(name)
        except LookupError:
            continue  # platform codecs (mbcs) named in the table
        try:
            assert text_codec(name) == info.name
        except InvalidCloudEvent as exc:
            assert "not a text encoding" in exc.problem, name
    # codecs.lookup remembers every name it does not know, forever: unknown names must
    # never reach it (the wire chooses them)
    before = len(encodings._cache)
    for n in range(200):
        with pytest.raises(InvalidCloudEvent, match="unknown charset"):
            text_codec(f"no-such-charset-{n}")
    assert len(encodings._cache) == before


@settings(max_examples=300, deadline=None)
@given(st.text(string.ascii_letters + string.digits + "-_.:+ ", min_size=1, max_size=12))
def test_charset_names_are_known_exactly_when_the_standard_library_knows_them(name) -> None:
    try:
        expected = codecs.lookup(name).name
    except LookupError:
        expected = None
    try:
        assert text_codec(name) == expected
    except InvalidCloudEvent as exc:
        assert expected is None or "not a text encoding" in exc.problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("caf\udcffe", "is not valid UTF-8"),  # raw byte 0xff, as aiohttp hands it over
        ("caf%FFe", "is not valid UTF-8"),
        ("caf\ud800e", "is not valid UTF-8"),
    ],
)
def test_header_values_that_are_not_utf8_name_the_attribute(value: str, problem: str) -> None:
    error = _error(lambda: http.decode_header_value("subject", value), "subject")
    assert problem in str(error)
    assert http.decode_header_value("subject", "café") == "café", "raw UTF-8 is read"


@pytest.mark.parametrize(
    "content_type", ["text/plain\r\nX-Injected: 1", "text/plain\x00", "a\x7f", "a\udcffb"]
)
def test_a_content_type_no_header_can_carry_names_datacontenttype(content_type: str) -> None:
    error = _error(lambda: make(datacontenttype=content_type), "datacontenttype")
    assert "control characters or lone surrogates" in str(error)
    assert make(datacontenttype="text/plain;\tcharset=utf-8").datacontenttype, "tab is fine"
    assert make(datacontenttype="text/ünïcode").datacontenttype, "so is non-ASCII text"


@pytest.mark.parametrize(
    "document",
    [
        {"specversion": "1.0", "id": "x" * 10**6 + "\x00", "source": ["s"] * 10**5, "type": "t"},
        {"specversion": "9" * 10**6, "id": "1", "source": "/s", "type": "t"},
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": "1" * 10**6},
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "dataschema": "x" * 10**6},
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "X" * 10**6: "v"},
        {
            "specversion": "1.0",
            "id": "1",
            "source": "/s",
            "type": "t",
            "datacontenttype": "a\n" * 10**6,
        },
    ],
)
def test_errors_quote_a_bounded_excerpt_of_what_was_sent(document: dict) -> None:
    with pytest.raises(InvalidCloudEvent) as info:
        structured.from_json(orjson.dumps(document))
    assert len(str(info.value)) < 500, str(info.value)[:1000]
