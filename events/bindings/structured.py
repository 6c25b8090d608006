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

Reading keeps only what binary mode can deliver as declared (the rule of
:func:`events.bindings.data.decode_payload`): ``data_base64`` without a
``datacontenttype`` is declared ``application/octet-stream``; bytes declared JSON
or text must read as declared; JSON declared in a charset other than UTF-8 is
re-declared ``charset=utf-8``; text must be writable in its declared charset; and
JSON text with ``data`` nested deeper than can be written again is refused
(:func:`events.bindings.data.check_depth`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from events.bindings.charsets import charset, with_utf8, written_back
from events.bindings.data import (
    MAX_DATA_DEPTH,
    base64_bytes,
    base64_text,
    check_depth,
    decode_payload,
    is_text_content_type,
)
from events.cloudevent import (
    CloudEvent,
    from_attributes,
    is_json_content_type,
)
from events.errors import InvalidCloudEvent, quote


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
    extensions = event.extensions
    if extensions:
        if _AS_THEY_ARE.issuperset(map(type, extensions.values())):
            out.update(extensions.copy())  # no bytes to write as base64 (the usual case)
        else:
            for name, value in extensions.items():
                out[name] = base64_text(value) if isinstance(value, bytes) else value
    data = event.data
    if data is None:
        return out
    if type(data) is str:  # the data member whatever the content type
        out["data"] = data
    elif isinstance(data, _BYTES_LIKE):
        out["data_base64"] = base64_text(data)
    elif (content_type := event.datacontenttype) is None or is_json_content_type(content_type):
        out["data"] = data  # event.is_json
    elif isinstance(data, str):
        out["data"] = data
    else:
        raise InvalidCloudEvent(
            "data",
            f"must be str or bytes for the non-JSON content type "
            f"{quote(event.datacontenttype)}, got {type(data).__name__}",
        )
    return out


#: Extension value types JSON writes as they are (a bytes value is written as base64).
_AS_THEY_ARE = frozenset((str, int, bool))
# isinstance() tuples made once (a union written in the call is built on every call)
_BYTES_LIKE = (bytes, bytearray, memoryview)
_BODY_TYPES = (bytes, bytearray, memoryview, str)


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
    if data_base64 is None and data is None:
        # no data: nothing for the content type to decide
        return from_attributes(attributes, owned=True)
    content_type = attributes.get("datacontenttype")
    # a type with no parameters names no charset: the data is what it says (the usual case)
    plain = type(content_type) is str and ";" not in content_type
    if data_base64 is None and (
        content_type is None  # JSON: any data as it is, declared as it was
        or (plain and (type(data) is str or is_json_content_type(content_type)))
    ):  # what _read_data and _as_delivered give for these, without asking them
        return from_attributes(attributes, data, owned=True)
    # A non-string content type counts as JSON here; from_attributes reports it.
    is_json = not isinstance(content_type, str) or is_json_content_type(content_type)
    data = _read_data(data, data_base64, content_type, is_json)
    if plain and not is_json and not is_text_content_type(content_type):
        # bytes of a type that is neither JSON nor text: delivered as they are
        return from_attributes(attributes, data, owned=True)
    if data_base64 is not None or not plain:
        declared = _as_delivered(data, content_type, is_json, data_base64 is not None)
        if declared is not content_type:
            attributes["datacontenttype"] = declared
    return from_attributes(attributes, data, owned=True)


def _read_data(data: Any, data_base64: Any, content_type: Any, is_json: bool) -> Any:
    # JSON null counts as absent, as the JSON format says of every member.
    if data is not None and data_base64 is not None:
        raise InvalidCloudEvent("data", "'data' and 'data_base64' must not both be present")
    if data_base64 is not None:
        if not isinstance(data_base64, str):
            raise InvalidCloudEvent("data_base64", "must be a base64 string")
        try:
            return base64_bytes(data_base64)
        except ValueError as exc:  # binascii.Error, or a character that is not ASCII
            raise InvalidCloudEvent("data_base64", f"is not valid base64: {exc}") from None
    if data is not None and not is_json and not isinstance(data, str):
        raise InvalidCloudEvent(
            "data",
            f"must be a JSON string for the non-JSON content type {quote(content_type)}, "
            f"got {type(data).__name__}",
        )
    return data


def _as_delivered(data: Any, content_type: Any, is_json: bool, raw: bool) -> Any:
    """The content type that describes ``data`` as binary mode will deliver it: the one
    rule of :func:`events.bindings.data.decode_payload`, from the other side. Bytes
    without a type are ``application/octet-stream`` (absent means JSON); bytes declared
    JSON or text must read as declared; JSON declared in another charset than UTF-8
    becomes ``charset=utf-8`` (JSON is written as UTF-8); text must be writable in its
    charset."""
    if not isinstance(content_type, str):  # absent (or not a string: from_attributes says so)
        return "application/octet-stream" if raw and content_type is None else content_type
    codec = charset(content_type)
    if raw:
        if is_json or is_text_content_type(content_type):
            try:
                decode_payload(data, content_type)
            except InvalidCloudEvent as exc:
                raise InvalidCloudEvent("data_base64", exc.problem) from None
        return content_type
    if codec == "utf-8":
        return content_type
    if is_json:
        return with_utf8(content_type)
    if isinstance(data, str) and not written_back(data, codec):
        raise InvalidCloudEvent("data", f"cannot be written as {codec}, as datacontenttype says")
    return content_type


def to_json(event: CloudEvent) -> bytes:
    """The event in the JSON event format, as UTF-8 bytes."""
    return _dumps(to_dict(event))


def from_json(body: bytes | str) -> CloudEvent:
    """An event from the JSON event format."""
    document = _loads(body)
    if len(body) > MAX_DATA_DEPTH * 2:  # shorter text cannot nest too deep: _check_data, inline
        _check_data(body, document)
    return from_dict(document, owned=True)


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
            _check_data(body, item)
            events.append(from_dict(item, owned=True))
        except InvalidCloudEvent as exc:
            raise InvalidCloudEvent(exc.attribute, f"{exc.problem} (batch item {index})") from None
    return events


def _check_data(body: bytes | str, document: Any) -> None:
    if type(document) is dict:
        check_depth(body, document.get("data"))


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        # attributes are str, bool or 32-bit int (CloudEvent checks), so the payload is at fault
        raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None


def _loads(body: bytes | str) -> Any:
    if not isinstance(body, _BODY_TYPES):
        raise InvalidCloudEvent("body", f"must be bytes or str, got {type(body).__name__}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidCloudEvent("body", f"is not valid JSON: {exc}") from None
