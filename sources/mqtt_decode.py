"""Turning one MQTT message into a CloudEvent, by the normalization rules.

Pure functions over what the message carries (topic, payload, and for MQTT 5
the Content Type and User Properties); paho is not imported.

Which messages are CloudEvents already (they pass through unchanged):

* MQTT 5 binary mode: a ``specversion`` User Property (the attributes are the
  User Properties, ``datacontenttype`` the Content Type, the payload the data);
* MQTT 5 structured mode: Content Type ``application/cloudevents+json``;
* structured JSON without a Content Type (all MQTT 3.1.1 CloudEvents look like
  this): a payload that is a JSON object with a ``specversion`` member. A
  payload that starts like a JSON object and names ``"specversion"`` but does
  not parse is taken as a broken CloudEvent, not as text.

Everything else is wrapped (``dev.fnevents.mqtt.message``): ``source``
``mqtt://host:port/<topic>``, ``subject`` the topic, ``time`` when it was decoded
(MQTT carries no timestamp), ``datacontenttype`` the MQTT 5 Content Type if one
was sent, else detected. MQTT has no message
position, so ``id`` is ``mqtt:`` + a hash of topic and payload: a QoS 1
redelivery of the same message keeps its id, and so does a second message with
the same bytes on the same topic (telemetry normally carries a timestamp or a
sequence number, which keeps readings apart).

A CloudEvent that is invalid, or a payload that cannot be carried as declared (see
:mod:`sources.normalize`, rule 3), raises :class:`~sources.normalize.Rejected`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from events.bindings.mqtt import from_mqtt5
from events.bindings.structured import from_dict
from events.cloudevent import CloudEvent
from events.observability import tracing
from sources.normalize import Origin, content_id, passthrough, structured_document, wrap

_STRUCTURED = "application/cloudevents"
_MARKER = b'"specversion"'
_clock: list = [0, ""]  # [millisecond, its RFC 3339 text]


def arrival_time() -> str:
    """Now, RFC 3339 in UTC to the millisecond; formatted once per millisecond (measured:
    formatting it for every message of a burst costs about 5 % of the source's time)."""
    millisecond = time.time_ns() // 1_000_000
    if millisecond != _clock[0]:
        stamp = datetime.fromtimestamp(millisecond / 1000, UTC).isoformat(timespec="milliseconds")
        _clock[:] = [millisecond, stamp.replace("+00:00", "Z")]
    return _clock[1]


def message_id(topic: str | bytes, payload: bytes) -> str:
    """The id of a wrapped (or rejected) message: the same for every redelivery of it."""
    return f"mqtt:{content_id(topic, payload)}"


def to_event(
    address: str,
    topic: str,
    payload: bytes,
    content_type: str | None = None,
    user_properties: Sequence[tuple[str, str]] = (),
) -> CloudEvent:
    """The CloudEvent for one message received from the broker at ``address`` (host:port).

    With tracing on, an event without trace context takes the message's ``traceparent``
    and ``tracestate`` user properties (MQTT 5).
    """
    event = _decode(address, topic, payload, content_type, user_properties)
    if tracing.enabled and user_properties:
        return tracing.adopt_pairs(event, user_properties)
    return event


def _decode(
    address: str,
    topic: str,
    payload: bytes,
    content_type: str | None,
    user_properties: Sequence[tuple[str, str]],
) -> CloudEvent:
    if (content_type and content_type.lstrip().lower().startswith(_STRUCTURED)) or (
        user_properties and any(name == "specversion" for name, _ in user_properties)
    ):
        return passthrough(from_mqtt5, payload, content_type, user_properties)
    if not content_type and _MARKER in payload:
        document = structured_document(payload)
        if document is not None:
            return passthrough(from_dict, document)
    origin = Origin(
        kind="mqtt",
        source=f"mqtt://{address}/{topic}",
        id=message_id(topic, payload),
        subject=topic,
        time=arrival_time(),
    )
    return wrap(payload, origin, content_type or None)
