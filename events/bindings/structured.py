"""The JSON event format (structured mode) and its batch form, with orjson.

Writing ``data``:

* ``bytes`` data goes to ``data_base64`` (whatever the content type);
* with a JSON content type (or none, which means JSON) ``data`` holds the JSON
  value itself, so a ``str`` becomes a JSON string;
* with any other content type ``data`` must be a ``str`` and is written as a
  JSON string; anything else is an error naming ``data``.

Reading ``data``: ``data_base64`` gives ``bytes``; ``data`` with a JSON content
type is kept as the parsed value; ``data`` with another content type must be a
JSON string; both members at once is an error.

Extensions keep their JSON type (string, integer, boolean); a ``bytes`` extension
is written as its base64 string and so reads back as a string.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from events.cloudevent import (
    CloudEvent,
    from_attributes,
    is_json_content_type,
)
from events.errors import InvalidCloudEvent


def to_dict(event: CloudEvent) -> dict[str, Any]:
    """The event as a JSON-ready dict (attributes, extensions, then the data member)."""
    # written out, in CONTEXT_ATTRIBUTES' order (it decides the bytes orjson writes); the
    # required attributes are never None (CloudEvent checks)
    out: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "specversion": event.specversion,
        "type": event.type,
    }
    if (value := event.datacontenttype) is not None:
        out["datacontenttype"] = value
    if (value := event.dataschema) is not None:
        out["dataschema"] = value
    if (value := event.subject) is not None:
        out["subject"] = value
    if (value := event.time) is not None:
        out["time"] = value
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
            f"{event.datacontenttype!r}, got {type(data).__name__}",
        )
    return out


def from_dict(d: Mapping[str, Any], *, owned: bool = False) -> CloudEvent:
    """An event from a parsed JSON object in the JSON event format.

    ``owned=True`` says the caller made ``d`` and will not use it again, so it is
    consumed in place instead of copied (the decode hot path of every bus).
    """
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
    if data_base64 is None and (data is None or type(data) is str):
        return from_attributes(attributes, data)  # nothing for the content type to decide
    content_type = attributes.get("datacontenttype")
    # A non-string content type counts as JSON here; from_attributes reports it.
    is_json = not isinstance(content_type, str) or is_json_content_type(content_type)
    return from_attributes(attributes, _read_data(data, data_base64, content_type, is_json))


def _read_data(data: Any, data_base64: Any, content_type: Any, is_json: bool) -> Any:
    # JSON null counts as absent, as the JSON format says of every member.
    if data is not None and data_base64 is not None:
        raise InvalidCloudEvent("data", "'data' and 'data_base64' must not both be present")
    if data_base64 is not None:
        if not isinstance(data_base64, str):
            raise InvalidCloudEvent("data_base64", "must be a base64 string")
        try:
            return base64.b64decode(data_base64, validate=True)
        except binascii.Error as exc:
            raise InvalidCloudEvent("data_base64", f"is not valid base64: {exc}") from None
    if data is not None and not is_json and not isinstance(data, str):
        raise InvalidCloudEvent(
            "data",
            f"must be a JSON string for the non-JSON content type {content_type!r}, "
            f"got {type(data).__name__}",
        )
    return data


def to_json(event: CloudEvent) -> bytes:
    """The event in the JSON event format, as UTF-8 bytes."""
    return _dumps(to_dict(event))


def from_json(body: bytes | str) -> CloudEvent:
    """An event from the JSON event format."""
    return from_dict(_loads(body))


def to_json_batch(events: Iterable[CloudEvent]) -> bytes:
    """Events in the JSON batch format: a JSON array of structured events."""
    return _dumps([to_dict(event) for event in events])


def from_json_batch(body: bytes | str) -> list[CloudEvent]:
    """Events from the JSON batch format; an error says which event is bad."""
    items = _loads(body)
    if not isinstance(items, list):
        raise InvalidCloudEvent(
            "body", f"a CloudEvents batch must be a JSON array, got {type(items).__name__}"
        )
    events = []
    for index, item in enumerate(items):
        try:
            events.append(from_dict(item))
        except InvalidCloudEvent as exc:
            raise InvalidCloudEvent(exc.attribute, f"{exc.problem} (batch item {index})") from None
    return events


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        # attributes are str, bool or 32-bit int (CloudEvent checks), so the payload is at fault
        raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None


def _loads(body: bytes | str) -> Any:
    if not isinstance(body, bytes | bytearray | memoryview | str):
        raise InvalidCloudEvent("body", f"must be bytes or str, got {type(body).__name__}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidCloudEvent("body", f"is not valid JSON: {exc}") from None
