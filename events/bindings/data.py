"""Helpers shared by the binary-mode codecs (HTTP, Kafka, MQTT 5), and the one rule for
reading a payload that every binding and every source follows.

Binary mode carries ``data`` as the raw message payload and every other attribute
as a string header. These rules live here once so all transports agree:

* payload bytes: bytes as they are; a JSON value (JSON content type, or none)
  serialized with orjson; a ``str`` encoded with the content type's charset
  (UTF-8 by default); None is no payload.
* reading a payload (:func:`decode_payload`): a JSON content type must hold valid
  JSON; ``text/*``, XML and any type with a ``charset`` parameter give ``str``;
  everything else gives ``bytes``. Text is decoded with the declared charset
  (UTF-8 when none is named), which must be a text encoding, and the content type
  is kept: binary mode writes the text back in that charset, so the type still
  describes the bytes a subscriber gets. JSON in another charset than UTF-8 is
  decoded with it too, and its content type is re-declared ``charset=utf-8``:
  ``data`` is then a JSON value, which every encoder writes as UTF-8 (RFC 8259 8.1).
  Refused, with :class:`InvalidCloudEvent`: a charset that is unknown or not a
  text encoding (``rot13``, ``base64``, ``zlib``...), bytes that do not decode as
  declared, text its charset could not write back unchanged, and JSON nested
  deeper than :data:`MAX_DATA_DEPTH` (orjson reads 1,024 levels but writes 254, so
  such data could be read but never delivered).
* header strings: each attribute's canonical string form from the spec's type
  system (booleans ``true``/``false``, integers in decimal, binary as base64).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

try:  # SIMD base64, 3-8x the stdlib's speed on a 1 KiB payload (bench/codec.py)
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - the stdlib does the same job, slower
    _pybase64 = None

from events.bindings.charsets import charset, decode_text, with_utf8
from events.cloudevent import (
    CloudEvent,
    ExtensionValue,
    from_attributes,
    is_json_content_type,
)
from events.errors import InvalidCloudEvent, quote, shorten

#: Content types naming a CloudEvents event format (structured and batch mode).
STRUCTURED_PREFIX = "application/cloudevents"
BATCH_PREFIX = "application/cloudevents-batch"
JSON_FORMAT = "application/cloudevents+json"
JSON_BATCH_FORMAT = "application/cloudevents-batch+json"
#: The deepest JSON ``data`` an event can carry: orjson writes at most 254 nested arrays
#: and objects, and the JSON event format and Dapr's envelope hold ``data`` inside the
#: event's own object. orjson *reads* 1,024 levels, so deeper data is refused on the way in.
MAX_DATA_DEPTH = 253
#: JSON text this short cannot be nested deeper: each level takes two brackets.
_SHALLOW = 2 * MAX_DATA_DEPTH
# isinstance() tuples made once: a union written in the call (``bytes | bytearray``) is
# built anew on every call, which costs more than the test itself on the hot paths
_BYTES_LIKE = (bytes, bytearray, memoryview)
_CONTAINERS = (dict, list)


def media_type(content_type: str | None) -> str:
    """The lower-case media type without parameters; "" when there is none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


#: Content type -> is text: a stream uses a handful of content types, each parsed once.
#: Bounded in count and length, since the wire chooses them.
_TEXT_MEDIA: dict[str, bool] = {}
_TEXT_MEDIA_LIMIT = 1024
_TEXT_MEDIA_LONGEST = 200


def is_text_content_type(content_type: str | None) -> bool:
    """Whether a non-JSON payload of this type is text (so ``data`` is ``str``)."""
    if type(content_type) is not str:
        return _is_text(content_type)
    known = _TEXT_MEDIA.get(content_type)
    if known is None:
        known = _is_text(content_type)
        if len(_TEXT_MEDIA) < _TEXT_MEDIA_LIMIT and len(content_type) <= _TEXT_MEDIA_LONGEST:
            _TEXT_MEDIA[content_type] = known
    return known


def _is_text(content_type: str | None) -> bool:
    media = media_type(content_type)
    return (
        media.startswith("text/")
        or media in ("application/xml", "application/javascript")
        or media.endswith("+xml")
        # a charset only makes sense for text, whatever the media type says
        or "charset=" in (content_type or "").lower()
    )


def encode_data(event: CloudEvent) -> bytes | None:
    """The binary-mode payload of ``event``; None when it has no data."""
    data = event.data
    if data is None:
        return None
    if type(data) is bytes:
        return data  # what bytes(data) would return: the same object
    if isinstance(data, _BYTES_LIKE):
        return bytes(data)
    content_type = event.datacontenttype
    if content_type is None or is_json_content_type(content_type):  # event.is_json
        try:
            return _dumps(data)
        except orjson.JSONEncodeError as exc:
            raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None
    if isinstance(data, str):
        try:
            return data.encode(charset(event.datacontenttype))
        except UnicodeEncodeError as exc:
            raise InvalidCloudEvent("data", f"cannot be encoded as declared: {exc}") from None
    raise InvalidCloudEvent(
        "data",
        f"must be str or bytes for the non-JSON content type "
        f"{quote(event.datacontenttype)}, got {type(data).__name__}",
    )


_dumps = orjson.dumps
_loads = orjson.loads


def dumps_data(data: Any) -> bytes:
    """A JSON payload as UTF-8 bytes; unserializable values name ``data``."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError as exc:
        raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None


def decode_payload(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """``data`` for a payload of the declared ``content_type`` (None means JSON, as the
    spec says), and the content type the event then has: the one rule (module docstring)."""
    if is_json_content_type(content_type):
        return _json_payload(body, content_type)
    if is_text_content_type(content_type):
        return decode_text(body, content_type), content_type
    return bytes(body), content_type


def _json_payload(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    # a type without parameters names no charset: UTF-8, what orjson reads (the usual case)
    codec = "utf-8" if not content_type or ";" not in content_type else charset(content_type)
    raw: bytes | str = body if codec == "utf-8" else decode_text(body, content_type)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        declared = shorten(content_type) if content_type else "JSON (no content type)"
        raise InvalidCloudEvent(
            "data", f"declared {declared} but is not valid JSON: {exc}"
        ) from None
    if len(raw) > _SHALLOW:
        check_depth(raw, value)
    if codec != "utf-8" and content_type:  # data is now a JSON value, written as UTF-8
        content_type = with_utf8(content_type)
    return value, content_type


def check_depth(raw: bytes | bytearray | memoryview | str, data: Any) -> None:
    """Refuse JSON ``data`` (parsed from ``raw``) nested deeper than :data:`MAX_DATA_DEPTH`.

    On the hot path this costs a length test, and for a payload over 506 bytes two
    counts of its brackets: each level takes an opening bracket, so only a payload with
    more than MAX_DATA_DEPTH of them is measured, by writing it as delivery will."""
    if len(raw) <= _SHALLOW or not isinstance(data, _CONTAINERS):
        return
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    openers = ("[", "{") if isinstance(raw, str) else (b"[", b"{")
    if raw.count(openers[0]) + raw.count(openers[1]) <= MAX_DATA_DEPTH:  # type: ignore[arg-type]
        return
    try:
        orjson.dumps([data])  # the list stands for the event's own object around data
    except orjson.JSONEncodeError:
        raise InvalidCloudEvent(
            "data",
            f"is JSON nested more than {MAX_DATA_DEPTH} levels deep, which can be read but "
            f"never delivered (JSON is written at most {MAX_DATA_DEPTH + 1} levels deep, and "
            "the event's own object is one of them)",
        ) from None


def sniff_data(body: bytes) -> tuple[Any, str]:
    """Data and content type of a payload that declares none: JSON if it parses, else
    UTF-8 text, else bytes. JSON too deeply nested to deliver is refused."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        if len(body) > _SHALLOW:
            check_depth(body, value)
        return value, "application/json"
    try:
        return bytes(body).decode("utf-8"), "text/plain"
    except UnicodeDecodeError:
        return bytes(body), "application/octet-stream"


def canonical_string(value: ExtensionValue) -> str:
    """An attribute value's canonical string form (CloudEvents type system)."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64_text(value)
    return str(value)


def base64_text(raw: bytes | bytearray | memoryview) -> str:
    """``raw`` in standard, padded base64, as a str: ``base64.b64encode(raw)`` decoded."""
    if _pybase64 is not None:
        try:
            return _pybase64.b64encode_as_string(raw)
        except (TypeError, ValueError, BufferError):
            pass  # the stdlib gives the result or the error as it always has
    return base64.b64encode(raw).decode("ascii")


def base64_bytes(text: str | bytes) -> bytes:
    """``base64.b64decode(text, validate=True)``: what it returns, or what it raises.

    pybase64 is asked first; whenever it refuses, the stdlib decides, so every error
    (and its words) is the stdlib's. tests/fastpaths/test_codec_base64.py checks that
    pybase64 never accepts what the stdlib refuses and returns the same bytes."""
    if _pybase64 is not None:
        try:
            return _pybase64.b64decode(text, validate=True)
        except (TypeError, ValueError):
            pass
    return base64.b64decode(text, validate=True)


def header_attributes(event: CloudEvent) -> Iterator[tuple[str, str]]:
    """(name, canonical string) for every attribute a binary mode puts in headers.

    ``datacontenttype`` is left out: every binding carries it in its own
    content-type field instead.
    """
    for name, value in event.attributes().items():
        if name != "datacontenttype":
            yield name, canonical_string(value)


def utf8(attribute: str, text: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate names the attribute instead of crashing."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCloudEvent(
            shorten(attribute), "is not valid Unicode (lone surrogate)"
        ) from None


def from_utf8(attribute: str, raw: bytes) -> str:
    """Header bytes as text; invalid UTF-8 names the attribute."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCloudEvent(shorten(attribute), "is not valid UTF-8") from None


def from_binary(
    attributes: Mapping[str, str], body: bytes | None, *, owned: bool = False
) -> CloudEvent:
    """An event from decoded header attributes (``datacontenttype`` included) and payload;
    an empty payload is no data. ``owned=True``: ``attributes`` is a dict the caller made
    and will not use again, so it is consumed instead of copied."""
    if not body:
        return from_attributes(attributes, owned=owned)
    content_type = attributes.get("datacontenttype")
    if content_type is None or (type(content_type) is str and ";" not in content_type):
        # no charset named: decode_payload's answer without its calls (the usual case)
        if is_json_content_type(content_type):
            try:
                data = _loads(body)
            except orjson.JSONDecodeError:
                decode_payload(body, content_type)  # raises the error, worded as always
                raise
            if len(body) > _SHALLOW:
                check_depth(body, data)
            return from_attributes(attributes, data, owned=owned)
        if not is_text_content_type(content_type):
            return from_attributes(attributes, bytes(body), owned=owned)
    data, declared = decode_payload(body, content_type)
    if declared is not content_type:
        if owned and type(attributes) is dict:
            attributes["datacontenttype"] = declared
        else:
            attributes = {**attributes, "datacontenttype": declared}
            owned = True
    return from_attributes(attributes, data, owned=owned)


def require_json_format(media: str, expected: str) -> None:
    """Reject event formats other than JSON (e.g. ``application/cloudevents+avro``)."""
    if media != expected:
        raise InvalidCloudEvent("body", f"unsupported CloudEvents format {quote(media)}")


def not_a_cloudevent(where: str, exc: InvalidCloudEvent) -> InvalidCloudEvent:
    """The error for a message that is neither binary nor a structured event."""
    return InvalidCloudEvent(
        "specversion",
        f"not a CloudEvent: no {where} and the payload is not a structured event "
        f"({exc.attribute}: {exc.problem})",
    )
