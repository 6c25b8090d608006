"""Interoperability with the official SDK (cloudevents 2.x, ``cloudevents.core``), both ways.

Ours -> SDK: our encodings are decoded by the SDK's own HTTP and Kafka bindings.
SDK -> ours: the SDK's own encoders feed our decoders. Plus ``to_sdk``/``from_sdk``.

Where the SDK's binary-mode *writer* cannot express a value (non-object JSON, a
non-UTF-8 charset) the sample is left out of that direction, and one test pins
the incompatibility we saw, so a change in either side shows up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent

from events.bindings import http, kafka
from events.bindings.sdk import from_sdk, to_sdk
from events.cloudevent import CloudEvent, parse_time
from events.errors import InvalidCloudEvent
from tests.cloudevent.cloudevent_samples import NON_UTF8, SAMPLES, TRICKY, make

# The SDK's binary writer turns non-dict values into str(value) ("False", "[1, 'two', None]"),
# writes a JSON string unquoted, and always encodes text as UTF-8 whatever the charset.
SDK_BINARY_WRITER_CANNOT = {"json-string", "json-list", "json-bool", "text-latin1"}
# The SDK's binary reader ignores the charset parameter and decodes UTF-8 only.
SDK_BINARY_READER_CANNOT = {"text-latin1"}

SAMPLES_WITH_KEY = {**SAMPLES, "partitionkey": make(extensions={"partitionkey": "user-ü 1"})}


def _subset(exclude: set[str]) -> dict[str, CloudEvent]:
    return {name: event for name, event in SAMPLES_WITH_KEY.items() if name not in exclude}


SDK_CAN_READ_BINARY = _subset(SDK_BINARY_READER_CANNOT)
SDK_CAN_WRITE_BINARY = _subset(SDK_BINARY_WRITER_CANNOT)

SDK_TIME = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
SDK_TIME_TEXT = "2024-05-01T12:30:45.123456Z"


def sdk_event(data: Any = None, **attributes: Any) -> SdkCloudEvent:
    base = {"id": "sdk-1", "source": "/sdk", "type": "com.example.sdk", "specversion": "1.0"}
    return SdkCloudEvent({**base, "time": SDK_TIME, **attributes}, data)


# Built with the SDK directly, so the SDK -> ours tests do not depend on to_sdk.
SDK_SAMPLES: dict[str, SdkCloudEvent] = {
    "json-object": sdk_event({"a": [1, None], "ü": "☃"}, datacontenttype="application/json"),
    "json-no-content-type": sdk_event({"k": {"n": 1.5}}),
    "text": sdk_event("héllo ☃ 😀", datacontenttype="text/plain; charset=utf-8"),
    "binary": sdk_event(NON_UTF8, datacontenttype="application/octet-stream"),
    "no-data": sdk_event(),
    "tricky-attributes": sdk_event(
        "x",
        datacontenttype="text/plain",
        subject=TRICKY,
        dataschema="https://example.com/schema?v=1",
        note=TRICKY,
        partitionkey="k ü",
    ),
}


def assert_sdk_matches(sdk: BaseCloudEvent, ours: CloudEvent) -> None:
    """Same attributes (time compared as an instant) and the same data, type included."""
    expected = ours.attributes()
    if ours.time is not None:
        expected["time"] = parse_time(ours.time)
    assert sdk.get_attributes() == expected
    assert sdk.get_data() == ours.data
    assert type(sdk.get_data()) is type(ours.data)


def assert_ours_matches(ours: CloudEvent, sdk: SdkCloudEvent, **extensions: Any) -> None:
    expected = {**sdk.get_attributes(), "time": SDK_TIME_TEXT, **extensions}
    assert ours.attributes() == expected
    assert ours.data == sdk.get_data()
    assert type(ours.data) is type(sdk.get_data())


def _sdk_kafka_message(record: kafka.KafkaRecord) -> sdk_kafka.KafkaMessage:
    return sdk_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)


def _from_sdk_kafka(message: sdk_kafka.KafkaMessage) -> CloudEvent:
    return kafka.from_record(message.key, message.value, list(message.headers.items()))


def _one(events: list[CloudEvent]) -> CloudEvent:
    assert len(events) == 1
    return events[0]


# --- ours -> SDK decoders ---------------------------------------------------------------


@pytest.mark.parametrize("event", SDK_CAN_READ_BINARY.values(), ids=SDK_CAN_READ_BINARY.keys())
def test_sdk_reads_our_http_binary(event: CloudEvent) -> None:
    headers, body = http.to_binary(event)
    decoded = sdk_http.from_http_event(sdk_http.HTTPMessage(headers=headers, body=body))
    assert_sdk_matches(decoded, event)


@pytest.mark.parametrize("event", SAMPLES_WITH_KEY.values(), ids=SAMPLES_WITH_KEY.keys())
def test_sdk_reads_our_http_structured(event: CloudEvent) -> None:
    headers, body = http.to_structured(event)
    decoded = sdk_http.from_http_event(sdk_http.HTTPMessage(headers=headers, body=body))
    assert_sdk_matches(decoded, event)


@pytest.mark.parametrize("event", SDK_CAN_READ_BINARY.values(), ids=SDK_CAN_READ_BINARY.keys())
def test_sdk_reads_our_kafka_binary(event: CloudEvent) -> None:
    decoded = sdk_kafka.from_kafka_event(_sdk_kafka_message(kafka.to_binary(event)))
    assert_sdk_matches(decoded, event)


@pytest.mark.parametrize("event", SAMPLES_WITH_KEY.values(), ids=SAMPLES_WITH_KEY.keys())
def test_sdk_reads_our_kafka_structured(event: CloudEvent) -> None:
    decoded = sdk_kafka.from_kafka_event(_sdk_kafka_message(kafka.to_structured(event)))
    assert_sdk_matches(decoded, event)


def test_sdk_reads_typed_extensions_as_we_write_them() -> None:
    event = make(extensions={"count": 7, "flag": True})
    headers, body = http.to_binary(event)
    binary = sdk_http.from_http_event(sdk_http.HTTPMessage(headers=headers, body=body))
    assert (binary.get_extension("count"), binary.get_extension("flag")) == ("7", "true")
    headers, body = http.to_structured(event)
    typed = sdk_http.from_http_event(sdk_http.HTTPMessage(headers=headers, body=body))
    assert (typed.get_extension("count"), typed.get_extension("flag")) == (7, True)


@pytest.mark.parametrize("event", SAMPLES_WITH_KEY.values(), ids=SAMPLES_WITH_KEY.keys())
def test_our_binary_headers_equal_the_sdks(event: CloudEvent) -> None:
    ours, _ = http.to_binary(event)
    theirs = sdk_http.to_binary_event(to_sdk(event)).headers
    assert {name.lower(): value for name, value in ours.items()} == theirs
    record = kafka.to_binary(event)
    message = sdk_kafka.to_binary_event(to_sdk(event))
    assert dict(record.headers) == message.headers
    assert record.key == (message.key.encode() if isinstance(message.key, str) else message.key)


# --- SDK encoders -> ours ---------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDK_SAMPLES.values(), ids=SDK_SAMPLES.keys())
def test_we_read_sdk_http_binary(sdk: SdkCloudEvent) -> None:
    message = sdk_http.to_binary_event(sdk)
    assert_ours_matches(_one(http.from_http(message.headers, message.body)), sdk)


@pytest.mark.parametrize("sdk", SDK_SAMPLES.values(), ids=SDK_SAMPLES.keys())
def test_we_read_sdk_http_structured(sdk: SdkCloudEvent) -> None:
    message = sdk_http.to_structured_event(sdk)
    assert http.is_cloudevent(message.headers)
    assert_ours_matches(_one(http.from_http(message.headers, message.body)), sdk)


@pytest.mark.parametrize("sdk", SDK_SAMPLES.values(), ids=SDK_SAMPLES.keys())
def test_we_read_sdk_kafka_binary(sdk: SdkCloudEvent) -> None:
    assert_ours_matches(_from_sdk_kafka(sdk_kafka.to_binary_event(sdk)), sdk)


@pytest.mark.parametrize("sdk", SDK_SAMPLES.values(), ids=SDK_SAMPLES.keys())
def test_we_read_sdk_kafka_structured(sdk: SdkCloudEvent) -> None:
    assert_ours_matches(_from_sdk_kafka(sdk_kafka.to_structured_event(sdk)), sdk)


def test_we_read_sdk_extensions_as_strings_in_binary_and_typed_in_structured() -> None:
    sdk = sdk_event(None, count=7, flag=True)
    structured_message = sdk_http.to_structured_event(sdk)
    typed = _one(http.from_http(structured_message.headers, structured_message.body))
    assert (typed.extensions["count"], typed.extensions["flag"]) == (7, True)
    binary = sdk_http.to_binary_event(sdk_event(None, count=7))
    assert _one(http.from_http(binary.headers, binary.body)).extensions["count"] == "7"


@pytest.mark.parametrize("event", SDK_CAN_WRITE_BINARY.values(), ids=SDK_CAN_WRITE_BINARY.keys())
def test_our_event_through_the_sdks_binary_encoders_comes_back_equal(event: CloudEvent) -> None:
    message = sdk_http.to_binary_event(to_sdk(event))
    assert _one(http.from_http(message.headers, message.body)) == event
    assert _from_sdk_kafka(sdk_kafka.to_binary_event(to_sdk(event))) == event


@pytest.mark.parametrize("event", SAMPLES_WITH_KEY.values(), ids=SAMPLES_WITH_KEY.keys())
def test_our_event_through_the_sdks_structured_encoders_comes_back_equal(
    event: CloudEvent,
) -> None:
    message = sdk_http.to_structured_event(to_sdk(event))
    assert _one(http.from_http(message.headers, message.body)) == event
    assert _from_sdk_kafka(sdk_kafka.to_structured_event(to_sdk(event))) == event


def test_sdk_writes_json_strings_unquoted_which_we_reject() -> None:
    message = sdk_http.to_binary_event(sdk_event("hello", datacontenttype="application/json"))
    assert message.body == b"hello"  # not the JSON text "hello" with quotes
    with pytest.raises(InvalidCloudEvent) as info:
        http.from_http(message.headers, message.body)
    assert info.value.attribute == "data"


# --- to_sdk / from_sdk --------------------------------------------------------------------


@pytest.mark.parametrize("event", SAMPLES_WITH_KEY.values(), ids=SAMPLES_WITH_KEY.keys())
def test_to_sdk_then_from_sdk_is_identity(event: CloudEvent) -> None:
    sdk = to_sdk(event)
    assert isinstance(sdk, SdkCloudEvent)
    assert_sdk_matches(sdk, event)
    assert from_sdk(sdk) == event


@pytest.mark.parametrize("sdk", SDK_SAMPLES.values(), ids=SDK_SAMPLES.keys())
def test_from_sdk_then_to_sdk_is_identity(sdk: SdkCloudEvent) -> None:
    ours = from_sdk(sdk)
    assert_ours_matches(ours, sdk)
    again = to_sdk(ours)
    assert again.get_attributes() == sdk.get_attributes()
    assert again.get_data() == sdk.get_data()


def test_times_keep_their_instant_and_offset_at_microsecond_precision() -> None:
    event = make(time="2024-05-01T18:00:45.5+05:30")
    back = from_sdk(to_sdk(event))
    assert back.time == "2024-05-01T18:00:45.500000+05:30"
    assert parse_time(back.time) == parse_time("2024-05-01T12:30:45.5Z")
    sdk = sdk_event(time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert from_sdk(sdk).time == "2024-01-02T03:04:05Z"
    offset = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).astimezone(timezone(timedelta(hours=-3)))
    assert from_sdk(sdk_event(time=offset)).time == "2024-01-02T00:04:05-03:00"


def test_sdk_stamps_a_time_on_events_without_one() -> None:
    event = CloudEvent(id="1", source="/s", type="t")
    sdk = to_sdk(event)
    assert isinstance(sdk.get_time(), datetime)
    assert from_sdk(sdk).evolve(time=None) == event


def test_bytes_extension_goes_to_the_sdk_as_base64() -> None:
    assert to_sdk(make(extensions={"blob": b"\x00\xff"})).get_extension("blob") == "AP8="


class _StubSdkEvent:
    """Just the two BaseCloudEvent methods from_sdk uses, to reach values the SDK refuses."""

    def __init__(self, attributes: dict[str, Any], data: Any = None) -> None:
        self._attributes, self._data = attributes, data

    def get_attributes(self) -> dict[str, Any]:
        return self._attributes

    def get_data(self) -> Any:
        return self._data


@pytest.mark.parametrize(
    ("attributes", "attribute"),
    [
        ({"time": datetime(2024, 1, 1)}, "time"),  # naive: not RFC 3339
        ({"ratio": 0.5}, "ratio"),
        ({"specversion": "0.3"}, "specversion"),
        ({"id": None}, "id"),
    ],
)
def test_from_sdk_rejects_what_we_cannot_hold(attributes: dict[str, Any], attribute: str) -> None:
    base = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0"}
    with pytest.raises(InvalidCloudEvent) as info:
        from_sdk(_StubSdkEvent({**base, **attributes}))  # type: ignore[arg-type]
    assert info.value.attribute == attribute
