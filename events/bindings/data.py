"""Helpers shared by the binary-mode codecs (HTTP, Kafka, MQTT 5).

Binary mode carries ``data`` as the raw message payload and every other attribute
as a string header. These rules live here once so all transports agree:

* payload bytes: bytes as they are; a JSON value (JSON content type, or none)
  serialized with orjson; a ``str`` encoded with the content type's charset
  (UTF-8 by default); None is no payload.
* reading a payload: empty means no data; a JSON content type must hold valid
  JSON; ``text/*``, XML and any type with a ``charset`` parameter give ``str``;
  everything else gives ``bytes``.
* header strings: each attribute's canonical string form from the spec's type
  system (booleans ``true``/``false``, integers in decimal, binary as base64).
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from events.cloudevent import (
    CloudEvent,
    ExtensionValue,
    from_attributes,
    is_json_content_type,
)
from events.errors import InvalidCloudEvent

#: Content types naming a CloudEvents event format (structured and batch mode).
STRUCTURED_PREFIX = "application/cloudevents"
BATCH_PREFIX = "application/cloudevents-batch"
JSON_FORMAT = "application/cloudevents+json"
JSON_BATCH_FORMAT = "application/cloudevents-batch+json"


def media_type(content_type: str | None) -> str:
    """The lower-case media type without parameters; "" when there is none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def charset(content_type: str | None) -> str:
    """The ``charset`` parameter's codec name, UTF-8 when absent."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip('"')
            try:
                return codecs.lookup(name).name
            except LookupError:
                raise InvalidCloudEvent(
                    "datacontenttype", f"names an unknown charset {name!r}"
                ) from None
    return "utf-8"


def is_text_content_type(content_type: str | None) -> bool:
    """Whether a non-JSON payload of this type is text (so ``data`` is ``str``)."""
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
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if event.is_json:
        return dumps_data(data)
    if isinstance(data, str):
        try:
            return data.encode(charset(event.datacontenttype))
        except UnicodeEncodeError as exc:
            raise InvalidCloudEvent("data", f"cannot be encoded as declared: {exc}") from None
    raise InvalidCloudEvent(
        "data",
        f"must be str or bytes for the non-JSON content type "
        f"{event.datacontenttype!r}, got {type(data).__name__}",
    )


def dumps_data(data: Any) -> bytes:
    """A JSON payload as UTF-8 bytes; unserializable values name ``data``."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError as exc:
        raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None


def decode_data(body: bytes | None, content_type: str | None) -> Any:
    """The ``data`` value of a binary-mode payload, by its content type."""
    if not body:
        return None
    if is_json_content_type(content_type):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidCloudEvent(
                "data",
                f"is declared JSON ({content_type or 'no content type'}) "
                f"but is not valid JSON: {exc}",
            ) from None
    if is_text_content_type(content_type):
        try:
            return bytes(body).decode(charset(content_type))
        except UnicodeDecodeError as exc:
            raise InvalidCloudEvent("data", f"is not valid text as declared: {exc}") from None
    return bytes(body)


def sniff_data(body: bytes) -> tuple[Any, str]:
    """Data and content type of a payload that declares none: JSON if it parses, else
    UTF-8 text, else bytes."""
    try:
        return orjson.loads(body), "application/json"
    except orjson.JSONDecodeError:
        pass
    try:
        return bytes(body).decode("utf-8"), "text/plain"
    except UnicodeDecodeError:
        return bytes(body), "application/octet-stream"


def canonical_string(value: ExtensionValue) -> str:
    """An attribute value's canonical string form (CloudEvents type system)."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


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
        raise InvalidCloudEvent(attribute, "is not valid Unicode (lone surrogate)") from None


def from_utf8(attribute: str, raw: bytes) -> str:
    """Header bytes as text; invalid UTF-8 names the attribute."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCloudEvent(attribute, "is not valid UTF-8") from None


def from_binary(attributes: Mapping[str, str], body: bytes | None) -> CloudEvent:
    """An event from decoded header attributes (``datacontenttype`` included) and payload."""
    data = decode_data(body, attributes.get("datacontenttype"))
    return from_attributes(attributes, data)


def require_json_format(media: str, expected: str) -> None:
    """Reject event formats other than JSON (e.g. ``application/cloudevents+avro``)."""
    if media != expected:
        raise InvalidCloudEvent("body", f"unsupported CloudEvents format {media!r}")


def not_a_cloudevent(where: str, exc: InvalidCloudEvent) -> InvalidCloudEvent:
    """The error for a message that is neither binary nor a structured event."""
    return InvalidCloudEvent(
        "specversion",
        f"not a CloudEvent: no {where} and the payload is not a structured event "
        f"({exc.attribute}: {exc.problem})",
    )
