"""Conversion to and from the official CloudEvents SDK (``cloudevents`` 2.x).

Uses the SDK's v2-native API: :class:`cloudevents.core.v1.event.CloudEvent` for
events we build, and the :class:`cloudevents.core.base.BaseCloudEvent` protocol
for events we read, so any SDK event type (or one decoded by the SDK's
``cloudevents.core.bindings.http``/``kafka``) converts. The legacy
``cloudevents.v1`` compatibility package is not used.

Differences in representation, handled here:

* the SDK holds ``time`` as a timezone-aware ``datetime``; we hold the RFC 3339
  string (written back with ``Z`` for UTC, to microsecond precision);
* the SDK stamps the current time on an event without ``time`` (its
  constructor does so unconditionally), so such an event gains one in ``to_sdk``;
* a ``bytes`` extension is given to the SDK as its base64 canonical string,
  because the SDK's codecs cannot write bytes extensions.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent

from events.cloudevent import CloudEvent, from_attributes, parse_time
from events.errors import InvalidCloudEvent


def to_sdk(event: CloudEvent) -> SdkCloudEvent:
    """The event as an SDK ``cloudevents.core.v1.event.CloudEvent``."""
    attributes: dict[str, Any] = event.attributes()
    if event.time is not None:
        attributes["time"] = parse_time(event.time)
    for name, value in event.extensions.items():
        if isinstance(value, bytes):
            attributes[name] = base64.b64encode(value).decode("ascii")
    return SdkCloudEvent(attributes, event.data)


def from_sdk(sdk_event: BaseCloudEvent) -> CloudEvent:
    """An event from any SDK 2.x event (the ``BaseCloudEvent`` protocol)."""
    attributes = dict(sdk_event.get_attributes())
    for name, value in attributes.items():
        if isinstance(value, datetime):
            attributes[name] = _rfc3339(name, value)
    return from_attributes(attributes, sdk_event.get_data())


def _rfc3339(name: str, value: datetime) -> str:
    if value.tzinfo is None:
        raise InvalidCloudEvent(name, "must be timezone-aware to be an RFC 3339 timestamp")
    text = value.isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
