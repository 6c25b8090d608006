"""The decode and construction fast paths give what the general paths give.

``CloudEvent`` validation, ``from_attributes``, ``parse_time`` and the envelope
codec take shortcuts for the common case (exact ``str`` values, the usual RFC 3339
form, zero or one extension). These tests pin the cases on either side of each
shortcut, so a shortcut can never accept, reject or reorder differently.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from events.bindings.structured import from_dict, to_dict, to_json
from events.bus import envelope
from events.cloudevent import CloudEvent, from_attributes, parse_time
from events.errors import InvalidCloudEvent

BASE = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0"}


class Text(str):
    """A str subclass: valid wherever a str is, but not on the exact-type shortcut."""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:30:45Z", datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)),
        ("2024-05-01t12:30:45z", datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)),
        ("2024-05-01T12:30:45.5-00:00", datetime(2024, 5, 1, 12, 30, 45, 500000, tzinfo=UTC)),
        (
            "2024-05-01T12:30:45.1234567890Z",
            datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC),
        ),
        (
            "2024-05-01T12:30:45+05:30",
            datetime(2024, 5, 1, 12, 30, 45, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        (Text("2024-05-01T12:30:45Z"), datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)),
    ],
)
def test_times_parse_to_the_same_instant_on_every_path(value: str, expected: datetime) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2024-02-30T12:30:45Z", "is not a real date/time"),
        ("2024-05-01T12:30:60Z", "is not a real date/time"),
        ("2024-05-01T24:00:00Z", "is not a real date/time"),
        ("٢٠٢٤-05-01T12:30:45Z", "is not a real date/time"),  # non-ASCII digits
        ("2024-05-01 12:30:45Z", "must be an RFC 3339 timestamp"),
        ("20240501T123045Z", "must be an RFC 3339 timestamp"),
        (Text("2024-05-01"), "must be an RFC 3339 timestamp"),
    ],
)
def test_bad_times_get_the_same_error_on_every_path(value: str, problem: str) -> None:
    with pytest.raises(InvalidCloudEvent) as info:
        parse_time(value)
    assert info.value.attribute == "time"
    assert info.value.problem.startswith(problem)


@pytest.mark.parametrize("name", ["id", "source", "type", "subject", "datacontenttype"])
def test_str_subclasses_are_text_and_empty_ones_are_not(name: str) -> None:
    assert from_attributes({**BASE, name: Text("x")}).get(name) == "x"
    with pytest.raises(InvalidCloudEvent) as info:
        from_attributes({**BASE, name: Text("")})
    assert info.value.attribute == name


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, {}),
        ({"one": "v"}, {"one": "v"}),
        ({"one": None}, {}),  # JSON null means absent
        ({"b": 1, "a": None, "c": True}, {"b": 1, "c": True}),
    ],
)
def test_extensions_keep_values_and_order(extra: dict[str, Any], expected: dict) -> None:
    event = from_attributes({"id": "1", **extra, "source": "/s", "type": "t", "specversion": "1.0"})
    assert dict(event.extensions) == expected
    assert list(event.extensions) == list(expected)


def test_first_error_is_reported_in_the_usual_order() -> None:
    """Required attributes, then extensions, then the optional attributes."""
    bad = {**BASE, "time": "yesterday", "Bad": "v", "source": ""}
    with pytest.raises(InvalidCloudEvent) as info:
        from_attributes(bad)
    assert info.value.attribute == "source"
    del bad["source"]
    with pytest.raises(InvalidCloudEvent) as info:
        from_attributes({**bad, "source": "/s"})
    assert info.value.attribute == "Bad"


def test_one_extension_is_read_only_and_not_shared() -> None:
    attributes = {**BASE, "tenant": "a"}
    event = from_attributes(attributes)
    attributes["tenant"] = "b"
    assert event.extensions["tenant"] == "a"
    with pytest.raises(TypeError):
        event.extensions["tenant"] = "c"  # type: ignore[index]


def test_structured_member_order_is_the_context_attribute_order() -> None:
    event = CloudEvent(
        id="1",
        source="/s",
        type="t",
        time="2024-05-01T12:30:45Z",
        subject="sub",
        dataschema="urn:s",
        datacontenttype="application/json",
        extensions={"zeta": "z", "alpha": 1},
        data={"k": 1},
    )
    assert list(to_dict(event)) == [
        "id",
        "source",
        "specversion",
        "type",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "zeta",
        "alpha",
        "data",
    ]
    assert from_dict(orjson.loads(to_json(event))) == event


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        (None, "text"),
        ("text/plain", "text"),
        ("application/json", {"k": [1, 2]}),
        ("text/plain", None),
        ("application/octet-stream", b"\x00\x01"),
    ],
)
def test_envelope_round_trip(content_type: str | None, data: Any) -> None:
    event = CloudEvent(id="1", source="/s", type="t", datacontenttype=content_type, data=data)
    raw = envelope.encode(event, "topic", "bus")
    assert envelope.decode(raw, topic="topic", pubsub_name="bus", fallback_id="f") == event


def test_non_json_content_type_still_rejects_non_string_data() -> None:
    raw = orjson.dumps({**BASE, "datacontenttype": "text/plain", "data": {"k": 1}})
    with pytest.raises(InvalidCloudEvent) as info:
        envelope.decode(raw, topic="topic", pubsub_name="bus", fallback_id="f")
    assert info.value.attribute == "data"
