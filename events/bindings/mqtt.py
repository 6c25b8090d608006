"""The CloudEvents MQTT binding: MQTT 5 binary mode and MQTT 3.1.1 structured mode.

Pure functions over payload and properties; paho (or any client) is not imported.

MQTT 5 binary mode: the Content Type property is ``datacontenttype``; every other
attribute is a User Property named by the attribute itself, *unprefixed*
(binding 3.1.3.1), holding its canonical string; the payload is the data (see
:mod:`events.bindings.data`). On receipt, User Properties whose names cannot be
attribute names (``[a-z0-9]+``) are left to the application and ignored, and a
``datacontenttype`` User Property is used when the Content Type is absent.

MQTT 3.1.1 has no properties, so it is always the JSON event format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from events.bindings import data as _data
from events.bindings.structured import from_json, to_json
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent, shorten

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")

UserProperties = list[tuple[str, str]]


def to_mqtt5(event: CloudEvent) -> tuple[bytes, str | None, UserProperties]:
    """MQTT 5 binary mode: (payload, Content Type property, User Properties)."""
    properties = list(_data.header_attributes(event))
    return _data.encode_data(event) or b"", event.datacontenttype, properties


def from_mqtt5(
    payload: bytes,
    content_type: str | None,
    user_properties: Iterable[tuple[str, str]],
) -> CloudEvent:
    """The event in an MQTT 5 message, whichever mode it uses.

    Structured when the Content Type starts with ``application/cloudevents``;
    binary when there is a ``specversion`` User Property; otherwise the payload
    is tried as a structured event.
    """
    media = _data.media_type(content_type)
    if media.startswith(_data.STRUCTURED_PREFIX):
        _data.require_json_format(media, _data.JSON_FORMAT)
        return from_json(payload)
    attributes = _attributes(user_properties)
    if "specversion" not in attributes:
        try:
            return from_json(payload)
        except InvalidCloudEvent as exc:
            raise _data.not_a_cloudevent("specversion user property", exc) from None
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    return _data.from_binary(attributes, payload)


def to_mqtt3(event: CloudEvent) -> bytes:
    """MQTT 3.1.1: the payload is always the JSON event format."""
    return to_json(event)


def from_mqtt3(payload: bytes) -> CloudEvent:
    """The event in an MQTT 3.1.1 payload (the JSON event format)."""
    return from_json(payload)


def _attributes(user_properties: Iterable[tuple[str, str]]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name, value in user_properties:
        if not _ATTRIBUTE_NAME.fullmatch(name):
            continue  # not an attribute name: an application property
        if name in attributes:
            # MQTT allows repeated properties, but an attribute has one value
            raise InvalidCloudEvent(shorten(name), "appears in more than one user property")
        attributes[name] = value
    return attributes
