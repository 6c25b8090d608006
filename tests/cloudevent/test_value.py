"""The CloudEvent value: validation on construction, immutability, helpers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.cloudevent import CloudEvent, from_attributes, parse_time
from events.errors import FnEventsError, InvalidCloudEvent
from tests.cloudevent.cloudevent_samples import make


def _invalid(attribute: str, **attributes: Any) -> InvalidCloudEvent:
    with pytest.raises(InvalidCloudEvent) as info:
        make(**attributes)
    assert info.value.attribute == attribute
    assert f"'{attribute}'" in str(info.value)
    return info.value


def test_minimal_event_gets_spec_version_and_no_optionals() -> None:
    event = CloudEvent(id="1", source="/s", type="t")
    assert event.specversion == "1.0"
    assert event.attributes() == {"id": "1", "source": "/s", "specversion": "1.0", "type": "t"}
    assert event.data is None
    assert event.is_json  # absent content type means JSON


@pytest.mark.parametrize("name", ["id", "source", "type"])
@pytest.mark.parametrize("bad", ["", None, 5, b"bytes"])
def test_required_attributes_must_be_non_empty_strings(name: str, bad: Any) -> None:
    _invalid(name, **{name: bad})


@pytest.mark.parametrize("name", ["id", "source", "type", "specversion"])
def test_from_attributes_names_the_missing_required_attribute(name: str) -> None:
    attributes = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0"}
    del attributes[name]
    with pytest.raises(InvalidCloudEvent) as info:
        from_attributes(attributes)
    assert info.value.attribute == name
    assert "missing" in info.value.problem


@pytest.mark.parametrize("version", ["0.3", "1", "1.0.0", "", 1.0])
def test_only_spec_version_1_0_is_accepted(version: Any) -> None:
    _invalid("specversion", specversion=version)


@pytest.mark.parametrize(
    "name", ["Upper", "with-dash", "under_score", "space d", "", "ünï", "data", "id", "time"]
)
def test_bad_extension_names_are_named(name: str) -> None:
    error = _invalid(name, extensions={name: "v"})
    assert error.attribute == name


@pytest.mark.parametrize("value", [1.5, None, [1], {"a": 1}, 2**31, -(2**31) - 1])
def test_bad_extension_values_are_named(value: Any) -> None:
    _invalid("myext", extensions={"myext": value})


@pytest.mark.parametrize("value", ["", "x", 0, -(2**31), 2**31 - 1, True, False, b"\x00\xff"])
def test_extension_values_of_every_spec_type_are_accepted(value: Any) -> None:
    assert make(extensions={"myext": value}).get("myext") == value


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T12:30:45Z",
        "2024-05-01t12:30:45z",
        "2024-02-29T23:59:59.999999999+14:00",
        "2024-05-01T12:30:45.1-05:30",
        "1970-01-01T00:00:00+00:00",
    ],
)
def test_rfc3339_times_are_accepted(value: str) -> None:
    assert make(time=value).time == value
    assert parse_time(value).tzinfo is not None


@pytest.mark.parametrize(
    "value",
    [
        "2023-02-29T00:00:00Z",  # not a leap year
        "2024-04-31T00:00:00Z",  # April has 30 days
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:60:00Z",
        "2024-01-01T12:00:00",  # no offset
        "2024-01-01 12:00:00Z",  # space instead of T
        "2024-01-01",
        "2024-01-01T12:00Z",  # no seconds
        "2024-01-01T12:00:00+0100",  # offset without colon
        "yesterday",
        "",
        1714566645,
    ],
)
def test_invalid_times_are_rejected_naming_time(value: Any) -> None:
    _invalid("time", time=value)


def test_parse_time_gives_the_instant() -> None:
    parsed = parse_time("2024-05-01T18:00:45.5+05:30")
    assert parsed == datetime(2024, 5, 1, 12, 30, 45, 500000, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(hours=5, minutes=30)
    assert parse_time("2024-05-01T12:30:45Z").tzinfo == UTC


@pytest.mark.parametrize("value", ["https://example.com/s.json", "urn:example:schema", "x+y:z"])
def test_absolute_dataschema_is_accepted(value: str) -> None:
    assert make(dataschema=value).dataschema == value


@pytest.mark.parametrize("value", ["/relative/schema.json", "schema.json", "", "1http://x", 3])
def test_dataschema_must_be_an_absolute_uri(value: Any) -> None:
    _invalid("dataschema", dataschema=value)


@pytest.mark.parametrize("name", ["subject", "datacontenttype"])
def test_optional_strings_must_not_be_empty(name: str) -> None:
    _invalid(name, **{name: ""})


def test_error_is_a_value_error_and_an_fnevents_error() -> None:
    error = _invalid("id", id="")
    assert isinstance(error, ValueError)
    assert isinstance(error, FnEventsError)
    assert error.retriable is False


def test_event_is_frozen_and_extensions_are_read_only() -> None:
    event = make(extensions={"a": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.extensions["a"] = "2"  # type: ignore[index]


@pytest.mark.parametrize("initial", [{}, {"a": "1"}])
def test_caller_dict_changes_do_not_leak_into_the_event(initial: dict[str, Any]) -> None:
    extensions = dict(initial)
    event = make(extensions=extensions)
    extensions["Bad Name"] = object()
    assert dict(event.extensions) == initial


def test_none_extensions_mean_no_extensions() -> None:
    event = make(extensions=None)
    assert dict(event.extensions) == {}
    assert "extensions" not in event.attributes()


def test_equality_covers_data_and_extensions() -> None:
    assert make(data={"a": 1}) == make(data={"a": 1})
    assert make(data={"a": 1}) != make(data={"a": 2})
    assert make(extensions={"x": "1"}) != make(extensions={"x": "2"})
    assert make(extensions={}) == make()


def test_create_fills_id_time_content_type_and_extensions() -> None:
    one = CloudEvent.create("com.example.t", "/src", data={"a": 1}, partitionkey="k")
    two = CloudEvent.create("com.example.t", "/src", data=b"\x00")
    assert one.id != two.id
    assert one.time is not None and parse_time(one.time).tzinfo is not None
    assert one.datacontenttype == "application/json"
    assert two.datacontenttype == "application/octet-stream"
    assert CloudEvent.create("t", "/s", data="x").datacontenttype == "text/plain"
    assert one.extensions == {"partitionkey": "k"}


def test_evolve_changes_attributes_extensions_and_data() -> None:
    event = make(extensions={"a": "1", "b": "2"}, data={"x": 1})
    changed = event.evolve(subject="s", a=None, c=3, data=None)
    assert changed.subject == "s"
    assert dict(changed.extensions) == {"b": "2", "c": 3}
    assert changed.data is None
    assert event.evolve() == event
    with pytest.raises(InvalidCloudEvent) as info:
        event.evolve(time="not a time")
    assert info.value.attribute == "time"


def test_get_and_attributes_list_context_then_extensions() -> None:
    event = make(subject="s", extensions={"zz": "1"})
    assert event.get("subject") == "s"
    assert event.get("zz") == "1"
    assert event.get("dataschema", "default") == "default"
    assert list(event.attributes()) == [
        "id",
        "source",
        "specversion",
        "type",
        "subject",
        "time",
        "zz",
    ]


def test_an_empty_dataschema_is_refused_even_as_the_only_optional_attribute() -> None:
    with pytest.raises(InvalidCloudEvent, match="dataschema"):
        CloudEvent("id-1", "/s", "t", dataschema="")
