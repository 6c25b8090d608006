"""Round-trips and error handling for every codec in events.bindings."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from events.bindings import http, kafka, mqtt, structured
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent
from tests.cloudevent.cloudevent_samples import NON_UTF8, SAMPLES, TRICKY, make

Codec = Callable[[CloudEvent], CloudEvent]

STRUCTURED_CODECS: dict[str, Codec] = {
    "json": lambda e: structured.from_json(structured.to_json(e)),
    "json-text": lambda e: structured.from_json(structured.to_json(e).decode()),
    "dict": lambda e: structured.from_dict(orjson.loads(orjson.dumps(structured.to_dict(e)))),
    "batch": lambda e: structured.from_json_batch(structured.to_json_batch([e]))[0],
    "http-structured": lambda e: _single(http.from_http(*http.to_structured(e))),
    "http-batch": lambda e: _single(http.from_http(*http.to_batch([e]))),
    "kafka-structured": lambda e: kafka.from_record(*kafka.to_structured(e)),
    "mqtt3": lambda e: mqtt.from_mqtt3(mqtt.to_mqtt3(e)),
    "mqtt5-structured": lambda e: mqtt.from_mqtt5(
        mqtt.to_mqtt3(e), mqtt.STRUCTURED_CONTENT_TYPE, []
    ),
}
BINARY_CODECS: dict[str, Codec] = {
    "http-binary": lambda e: _single(http.from_http(*http.to_binary(e))),
    "kafka-binary": lambda e: kafka.from_record(*kafka.to_binary(e)),
    "mqtt5-binary": lambda e: mqtt.from_mqtt5(*mqtt.to_mqtt5(e)),
}
ALL_CODECS = {**STRUCTURED_CODECS, **BINARY_CODECS}


def _single(events: list[CloudEvent]) -> CloudEvent:
    assert len(events) == 1
    return events[0]


def _error(call: Callable[[], Any], attribute: str) -> InvalidCloudEvent:
    with pytest.raises(InvalidCloudEvent) as info:
        call()
    assert info.value.attribute == attribute, info.value
    return info.value


# --- round-trips --------------------------------------------------------------------


@pytest.mark.parametrize("codec", ALL_CODECS.values(), ids=ALL_CODECS.keys())
@pytest.mark.parametrize("event", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_codec_round_trips_every_sample(codec: Codec, event: CloudEvent) -> None:
    back = codec(event)
    assert back == event
    assert type(back.data) is type(event.data)


@pytest.mark.parametrize("codec", STRUCTURED_CODECS.values(), ids=STRUCTURED_CODECS.keys())
def test_structured_modes_keep_extension_types(codec: Codec) -> None:
    event = make(extensions={"count": 7, "neg": -3, "flag": True, "off": False, "s": "7"})
    back = codec(event)
    assert back == event
    assert type(back.extensions["flag"]) is bool
    assert type(back.extensions["count"]) is int


@pytest.mark.parametrize("codec", BINARY_CODECS.values(), ids=BINARY_CODECS.keys())
def test_binary_modes_carry_extensions_as_canonical_strings(codec: Codec) -> None:
    event = make(
        extensions={"count": 7, "neg": -3, "flag": True, "off": False, "blob": b"\x00\xff"}
    )
    assert dict(codec(event).extensions) == {
        "count": "7",
        "neg": "-3",
        "flag": "true",
        "off": "false",
        "blob": "AP8=",
    }


@pytest.mark.parametrize("codec", STRUCTURED_CODECS.values(), ids=STRUCTURED_CODECS.keys())
def test_bytes_extension_is_written_as_base64(codec: Codec) -> None:
    event = make(extensions={"blob": b"\x00\xffhi"})
    assert codec(event).extensions["blob"] == base64.b64encode(b"\x00\xffhi").decode()


def test_bytes_data_with_json_type_is_base64_structured_but_parsed_in_binary_mode() -> None:
    event = make(datacontenttype="application/json", data=b'{"a": 1}')
    assert structured.to_dict(event)["data_base64"] == base64.b64encode(b'{"a": 1}').decode()
    assert STRUCTURED_CODECS["json"](event).data == b'{"a": 1}'
    assert BINARY_CODECS["http-binary"](event).data == {"a": 1}


def test_empty_text_payload_reads_back_as_no_data_in_binary_mode() -> None:
    event = make(datacontenttype="text/plain", data="")
    assert STRUCTURED_CODECS["json"](event).data == ""
    assert BINARY_CODECS["http-binary"](event).data is None


# --- structured JSON ----------------------------------------------------------------


def test_to_dict_layout_follows_the_json_format() -> None:
    assert structured.to_dict(make(datacontenttype="text/plain", data="hi", subject="s")) == {
        "id": "evt-1",
        "source": "/sensors/7",
        "specversion": "1.0",
        "type": "com.example.reading",
        "datacontenttype": "text/plain",
        "subject": "s",
        "time": "2024-05-01T12:30:45.123456Z",
        "data": "hi",
    }
    binary = structured.to_dict(make(datacontenttype="application/octet-stream", data=NON_UTF8))
    assert binary["data_base64"] == base64.b64encode(NON_UTF8).decode()
    assert "data" not in binary
    assert "data" not in structured.to_dict(make())


def test_json_string_data_is_a_json_string_not_raw_text() -> None:
    body = structured.to_json(make(datacontenttype="application/json", data="hi"))
    assert orjson.loads(body)["data"] == "hi"
    _, http_body = http.to_binary(make(datacontenttype="application/json", data="hi"))
    assert http_body == b'"hi"'


def test_unicode_is_utf8_in_json() -> None:
    body = structured.to_json(make(subject="ünï ☃", data={"k": "😀"}))
    assert "ünï ☃".encode() in body
    assert "😀".encode() in body


def test_json_null_members_count_as_absent() -> None:
    event = structured.from_dict(
        {
            "id": "1",
            "source": "/s",
            "type": "t",
            "specversion": "1.0",
            "subject": None,
            "data": None,
            "data_base64": "aGk=",
            "ext": None,
        }
    )
    assert event.data == b"hi"
    assert event.subject is None
    assert "ext" not in event.extensions


def test_batch_round_trips_several_events_in_order() -> None:
    events = list(SAMPLES.values())
    assert structured.from_json_batch(structured.to_json_batch(events)) == events
    assert structured.from_json_batch(b"[]") == []
    headers, body = http.to_batch(events)
    assert headers == {"Content-Type": "application/cloudevents-batch+json"}
    assert http.from_http(headers, body) == events


_VALID = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0"}


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        (b"not json", "body"),
        (b"", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (b'"a string"', "body"),
        (orjson.dumps({**_VALID, "id": None}), "id"),
        (orjson.dumps({k: v for k, v in _VALID.items() if k != "source"}), "source"),
        (orjson.dumps({k: v for k, v in _VALID.items() if k != "specversion"}), "specversion"),
        (orjson.dumps({**_VALID, "specversion": "0.3"}), "specversion"),
        (orjson.dumps({**_VALID, "type": 7}), "type"),
        (orjson.dumps({**_VALID, "time": "2023-02-29T00:00:00Z"}), "time"),
        (orjson.dumps({**_VALID, "dataschema": "relative"}), "dataschema"),
        (orjson.dumps({**_VALID, "datacontenttype": 5, "data": 1}), "datacontenttype"),
        (orjson.dumps({**_VALID, "Bad-Ext": "x"}), "Bad-Ext"),
        (orjson.dumps({**_VALID, "ratio": 0.5}), "ratio"),
        (orjson.dumps({**_VALID, "nested": {"a": 1}}), "nested"),
        (orjson.dumps({**_VALID, "data": 1, "data_base64": "AA=="}), "data"),
        (orjson.dumps({**_VALID, "data_base64": "not base64!"}), "data_base64"),
        (orjson.dumps({**_VALID, "data_base64": 12}), "data_base64"),
        (orjson.dumps({**_VALID, "datacontenttype": "text/plain", "data": {"a": 1}}), "data"),
    ],
)
def test_bad_structured_input_names_the_attribute(body: bytes, attribute: str) -> None:
    _error(lambda: structured.from_json(body), attribute)


def test_from_json_rejects_non_bytes_input() -> None:
    _error(lambda: structured.from_json(None), "body")  # type: ignore[arg-type]


def test_bad_batch_names_the_attribute_and_the_item() -> None:
    good = structured.to_dict(make())
    body = orjson.dumps([good, {**good, "time": "soon"}])
    error = _error(lambda: structured.from_json_batch(body), "time")
    assert "batch item 1" in str(error)
    _error(lambda: structured.from_json_batch(orjson.dumps(good)), "body")
    _error(lambda: structured.from_json_batch(b"[1]"), "body")


@pytest.mark.parametrize(
    ("event", "attribute"),
    [
        (make(datacontenttype="text/plain", data={"a": 1}), "data"),
        (make(datacontenttype="application/json", data={1, 2}), "data"),
        (make(datacontenttype="application/json", data={"t": object()}), "data"),
    ],
)
def test_unencodable_data_names_data(event: CloudEvent, attribute: str) -> None:
    _error(lambda: structured.to_json(event), attribute)
    _error(lambda: http.to_binary(event), attribute)
    _error(lambda: kafka.to_binary(event), attribute)
    _error(lambda: mqtt.to_mqtt5(event), attribute)


def test_text_that_the_declared_charset_cannot_hold_names_data() -> None:
    event = make(datacontenttype="text/plain; charset=us-ascii", data="é")
    _error(lambda: http.to_binary(event), "data")


def test_unknown_charset_names_datacontenttype() -> None:
    event = make(datacontenttype="text/plain; charset=no-such-charset", data="x")
    _error(lambda: http.to_binary(event), "datacontenttype")


# --- HTTP -----------------------------------------------------------------------------


def test_http_binary_headers_and_body() -> None:
    event = make(datacontenttype="application/json", subject="s", extensions={"n": 7}, data=[1])
    headers, body = http.to_binary(event)
    assert headers == {
        "ce-id": "evt-1",
        "ce-source": "/sensors/7",
        "ce-specversion": "1.0",
        "ce-type": "com.example.reading",
        "ce-subject": "s",
        "ce-time": "2024-05-01T12:30:45.123456Z",
        "ce-n": "7",
        "Content-Type": "application/json",
    }
    assert body == b"[1]"
    headers, body = http.to_binary(make())
    assert "Content-Type" not in headers
    assert body == b""


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"),  # the spec's own example
        ('say "hi"', "say%20%22hi%22"),
        ("100%", "100%25"),
        ("%20", "%2520"),
        ("tab\there\x7f", "tab%09here%7F"),
        ("!#$&'()*+,/:;<=>?@[\\]^_`{|}~", "!#$&'()*+,/:;<=>?@[\\]^_`{|}~"),
        ("ünï", "%C3%BCn%C3%AF"),
    ],
)
def test_http_header_values_are_percent_encoded_per_the_spec(value: str, encoded: str) -> None:
    headers, _ = http.to_binary(make(subject=value, extensions={"note": value}))
    assert headers["ce-subject"] == encoded
    assert headers["ce-note"] == encoded
    assert _single(http.from_http(headers, b"")).subject == value


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("a%c3%a9", "aé"),  # lower-case hex must be accepted
        ("%41%42C", "ABC"),  # needless encoding must be accepted
        ('"quoted value"', "quoted value"),  # older senders quoted instead of encoding
        ('"a \\"b\\" c"', 'a "b" c'),
        ('"50%25"', "50%"),
        ("  padded  ", "padded"),
        ("plus+stays", "plus+stays"),
    ],
)
def test_http_header_values_are_decoded_leniently(raw: str, decoded: str) -> None:
    headers = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    assert _single(http.from_http({**headers, "ce-subject": raw}, b"")).subject == decoded


@pytest.mark.parametrize("raw", ["%C0%A0", "%FF", "%E2%82", "%ED%A0%80"])
def test_invalid_utf8_in_headers_is_rejected_naming_the_attribute(raw: str) -> None:
    headers = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    _error(lambda: http.from_http({**headers, "ce-subject": raw}, b""), "subject")


def test_lone_surrogate_is_rejected_when_encoding() -> None:
    _error(lambda: http.to_binary(make(subject="bad \ud800")), "subject")


def test_http_header_names_are_case_insensitive() -> None:
    headers = {
        "CE-ID": "1",
        "Ce-Source": "/s",
        "ce-TYPE": "t",
        "CE-SPECVERSION": "1.0",
        "CE-MyExt": "v",
        "content-TYPE": "application/json",
    }
    event = _single(http.from_http(headers, b'{"a": 1}'))
    assert event == CloudEvent(
        id="1",
        source="/s",
        type="t",
        datacontenttype="application/json",
        extensions={"myext": "v"},
        data={"a": 1},
    )
    assert (
        _single(
            http.from_http(
                {"CONTENT-TYPE": "Application/CloudEvents+JSON"}, structured.to_json(event)
            )
        )
        == event
    )


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        ("application/json", b"", None),
        (None, b"", None),
        (None, b"[1]", [1]),  # no Content-Type means JSON
        ("application/json; charset=utf-8", b'"s"', "s"),
        ("text/csv", b"a,b\n", "a,b\n"),
        ("text/plain; charset=iso-8859-1", "é".encode("latin-1"), "é"),
        ("application/xml", "<ü/>".encode(), "<ü/>"),
        ("image/png", b"\x89PNG", b"\x89PNG"),
        ("application/octet-stream", b"valid utf-8", b"valid utf-8"),
    ],
)
def test_http_binary_body_is_read_by_content_type(
    content_type: str | None, body: bytes, data: Any
) -> None:
    headers = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    event = _single(http.from_http(headers, body))
    assert event.data == data
    assert type(event.data) is type(data)
    assert event.datacontenttype == content_type


_BINARY = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}


@pytest.mark.parametrize(
    ("headers", "body", "attribute"),
    [
        ({**_BINARY, "Content-Type": "application/json"}, b"{not json", "data"),
        ({k: v for k, v in _BINARY.items() if k != "ce-specversion"}, b"", "specversion"),
        ({"Content-Type": "application/json"}, b'{"a": 1}', "specversion"),
        ({k: v for k, v in _BINARY.items() if k != "ce-id"}, b"", "id"),
        ({**_BINARY, "ce-specversion": "0.3"}, b"", "specversion"),
        ({**_BINARY, "ce-time": "2024-02-30T00:00:00Z"}, b"", "time"),
        ({**_BINARY, "ce-Bad_Name": "x"}, b"", "bad_name"),
        ({**_BINARY, "ce-datacontenttype": "text/plain"}, b"", "datacontenttype"),
        ({**_BINARY, "Content-Type": "text/plain"}, b"\xff", "data"),
        ({"Content-Type": "application/cloudevents+json"}, b"", "body"),
        ({"Content-Type": "application/cloudevents+json"}, b"{}", "id"),
        ({"Content-Type": "application/cloudevents+avro"}, b"\x00", "body"),
        ({"Content-Type": "application/cloudevents-batch+json"}, b"{}", "body"),
    ],
)
def test_bad_http_input_names_the_attribute(
    headers: dict[str, str], body: bytes, attribute: str
) -> None:
    _error(lambda: http.from_http(headers, body), attribute)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (http.to_binary(make())[0], True),
        (http.to_structured(make())[0], True),
        (http.to_batch([make()])[0], True),
        ({"content-type": "application/cloudevents+json; charset=UTF-8"}, True),
        ({"CE-SpecVersion": "1.0"}, True),
        ({"Content-Type": "application/json"}, False),
        ({"Content-Type": "text/plain", "ce-id": "1"}, False),
        ({}, False),
    ],
)
def test_is_cloudevent(headers: dict[str, str], expected: bool) -> None:
    assert http.is_cloudevent(headers) is expected


# --- Kafka ----------------------------------------------------------------------------


def test_kafka_binary_record_layout() -> None:
    event = make(datacontenttype="text/plain", subject=TRICKY, extensions={"n": 7}, data="hi")
    record = kafka.to_binary(event)
    assert record.key is None
    assert record.value == b"hi"
    assert record.headers == [
        ("ce_id", b"evt-1"),
        ("ce_source", b"/sensors/7"),
        ("ce_specversion", b"1.0"),
        ("ce_type", b"com.example.reading"),
        ("ce_subject", TRICKY.encode()),  # UTF-8, no percent-encoding
        ("ce_time", b"2024-05-01T12:30:45.123456Z"),
        ("ce_n", b"7"),
        ("content-type", b"text/plain"),
    ]


def test_kafka_structured_record_layout() -> None:
    record = kafka.to_structured(make(data={"a": 1}))
    assert record.headers == [("content-type", b"application/cloudevents+json; charset=UTF-8")]
    assert record.value == structured.to_json(make(data={"a": 1}))


@pytest.mark.parametrize("encode", [kafka.to_binary, kafka.to_structured])
def test_kafka_key_comes_from_partitionkey_by_default(encode: Callable[..., Any]) -> None:
    event = make(extensions={"partitionkey": "user-ü"})
    record = encode(event)
    assert record.key == "user-ü".encode()
    assert kafka.from_record(*record).extensions["partitionkey"] == "user-ü"
    assert encode(make()).key is None


@pytest.mark.parametrize(
    ("mapper", "key"),
    [
        (lambda e: e.subject, b"room-1"),
        (lambda e: b"\x00raw", b"\x00raw"),
        (lambda e: None, None),
    ],
)
def test_kafka_key_mapper_chooses_the_key_without_changing_the_event(
    mapper: kafka.KeyMapper, key: bytes | None
) -> None:
    event = make(subject="room-1", extensions={"partitionkey": "ignored"})
    record = kafka.to_binary(event, key_mapper=mapper)
    assert record.key == key
    assert kafka.from_record(*record) == event
    assert kafka.to_structured(event, key_mapper=mapper).key == key


def test_kafka_event_without_data_is_a_tombstone() -> None:
    record = kafka.to_binary(make())
    assert record.value is None
    assert kafka.from_record(*record).data is None
    assert kafka.to_structured(make()).value is not None  # structured is never a tombstone


def test_kafka_key_is_not_copied_into_the_event() -> None:
    record = kafka.to_binary(make())
    assert (
        "partitionkey"
        not in kafka.from_record(b"some-key", record.value, record.headers).extensions
    )


def test_kafka_header_names_are_case_insensitive_and_none_values_skipped() -> None:
    headers = [
        ("CE_ID", b"1"),
        ("ce_Source", b"/s"),
        ("ce_type", b"t"),
        ("CE_SPECVERSION", b"1.0"),
        ("Content-Type", b"application/json"),
        ("ce_subject", None),
    ]
    event = kafka.from_record(None, b"[1]", headers)
    assert event == CloudEvent(
        id="1", source="/s", type="t", datacontenttype="application/json", data=[1]
    )


def test_kafka_headerless_structured_value_is_accepted() -> None:
    event = make(data={"a": 1})
    assert kafka.from_record(None, structured.to_json(event), []) == event


@pytest.mark.parametrize(
    ("value", "headers", "attribute"),
    [
        (
            b"x",
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", b"\xff"),
                ("ce_source", b"/s"),
                ("ce_type", b"t"),
            ],
            "id",
        ),
        (b"", [("ce_specversion", b"1.0"), ("ce_source", b"/s"), ("ce_type", b"t")], "id"),
        (
            b"{bad",
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", b"1"),
                ("ce_source", b"/s"),
                ("ce_type", b"t"),
                ("content-type", b"application/json"),
            ],
            "data",
        ),
        (b"plain", [], "specversion"),
        (b'{"a": 1}', [("content-type", b"application/json")], "specversion"),
        (None, [], "specversion"),
        (None, [("content-type", b"application/cloudevents+json")], "body"),
        (b"{}", [("content-type", b"application/cloudevents+json")], "id"),
        (b"\x00", [("content-type", b"application/cloudevents+protobuf")], "body"),
        (b"x", [("content-type", b"\xff")], "datacontenttype"),
    ],
)
def test_bad_kafka_input_names_the_attribute(
    value: bytes | None, headers: list[tuple[str, bytes]], attribute: str
) -> None:
    _error(lambda: kafka.from_record(None, value, headers), attribute)


# --- MQTT -----------------------------------------------------------------------------


def test_mqtt5_binary_uses_unprefixed_user_properties() -> None:
    event = make(datacontenttype="application/json", subject=TRICKY, extensions={"n": 7}, data=[1])
    payload, content_type, properties = mqtt.to_mqtt5(event)
    assert payload == b"[1]"
    assert content_type == "application/json"
    assert properties == [
        ("id", "evt-1"),
        ("source", "/sensors/7"),
        ("specversion", "1.0"),
        ("type", "com.example.reading"),
        ("subject", TRICKY),  # MQTT strings are UTF-8: no percent-encoding
        ("time", "2024-05-01T12:30:45.123456Z"),
        ("n", "7"),
    ]
    assert mqtt.to_mqtt5(make())[:2] == (b"", None)


_MQTT = [("id", "1"), ("source", "/s"), ("type", "t"), ("specversion", "1.0")]


def test_mqtt5_ignores_properties_that_are_not_attribute_names() -> None:
    properties = [*_MQTT, ("X-Trace", "abc"), ("app_prop", "1"), ("ext1", "kept")]
    event = mqtt.from_mqtt5(b"", None, properties)
    assert dict(event.extensions) == {"ext1": "kept"}


def test_mqtt5_content_type_falls_back_to_the_user_property() -> None:
    properties = [*_MQTT, ("datacontenttype", "text/plain")]
    assert mqtt.from_mqtt5(b"hi", None, properties).data == "hi"
    event = mqtt.from_mqtt5(b"[1]", "application/json", properties)
    assert event.datacontenttype == "application/json"
    assert event.data == [1]


def test_mqtt5_detects_structured_payload_without_properties() -> None:
    event = make(data={"a": 1}, extensions={"n": 7})
    assert mqtt.from_mqtt5(structured.to_json(event), None, []) == event
    assert mqtt.from_mqtt5(structured.to_json(event), "application/json", []) == event


@pytest.mark.parametrize(
    ("payload", "content_type", "properties", "attribute"),
    [
        (b"x", None, [*_MQTT, ("id", "2")], "id"),
        (b"{bad", "application/json", _MQTT, "data"),
        (b"plain text", "text/plain", [], "specversion"),
        (b"", None, [], "specversion"),
        (b"{}", "application/cloudevents+json", [], "id"),
        (b"x", "application/cloudevents+avro", [], "body"),
        (b"", None, [p for p in _MQTT if p[0] != "type"], "type"),
    ],
)
def test_bad_mqtt5_input_names_the_attribute(
    payload: bytes, content_type: str | None, properties: list[tuple[str, str]], attribute: str
) -> None:
    _error(lambda: mqtt.from_mqtt5(payload, content_type, properties), attribute)


def test_mqtt3_is_the_json_format() -> None:
    event = SAMPLES["binary"]
    assert mqtt.to_mqtt3(event) == structured.to_json(event)
    _error(lambda: mqtt.from_mqtt3(b"nope"), "body")
