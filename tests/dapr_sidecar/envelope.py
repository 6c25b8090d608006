"""Test double (not Dapr): what a Dapr sidecar does to an event on the way in and out.

Publishing (dapr/dapr PublishEvent, BulkPublishEventAlpha1):

- With content type ``application/cloudevents+json``, the caller's envelope is
  kept. Here it must have the required attributes, because the backing bus stores
  CloudEvent values; Dapr would keep any JSON object. Like Dapr, it does not check
  ``data_base64`` against ``datacontenttype``: the bytes are kept as sent.
- With any other content type, the payload is wrapped in Dapr's envelope:
  - ``id``: a uuid4;
  - ``source``: the app id;
  - ``type``: ``com.dapr.event.sent``;
  - ``datacontenttype``: from the request, ``text/plain`` by default;
  - ``data``: a JSON value for ``application/json`` (a string if it does not
    parse), bytes for ``application/octet-stream``, a string otherwise.

Not emulated: trace fields from the sidecar's own tracing, ``time`` filled in,
``rawPayload``, and TTLs.

Delivery (dapr/dapr pkg/runtime/pubsub ``GRPCEnvelopeFromSubscriptionMessage``):
the envelope, as stored (with ``topic`` and ``pubsubname`` added), becomes a
``TopicEventRequest``:

- ``id``, ``source``, ``type``, ``specversion`` and ``datacontenttype`` become
  fields, and every other member goes into the ``extensions`` Struct.
- ``data_base64`` is decoded into ``data``.
- ``data`` is JSON-encoded for ``application/json`` and
  ``application/cloudevents+json``, and sent as UTF-8 for ``text/*`` and
  ``application/xml``.
- For any other content type, ``data`` is dropped.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import dapr.proto.runtime.v1 as api
import orjson

from events.bindings.structured import to_dict
from events.brokers.dapr.codec import CLOUDEVENT_CONTENT_TYPE, is_text_content_type
from events.cloudevent import CloudEvent, from_attributes
from events.errors import InvalidCloudEvent

DAPR_EVENT_TYPE = "com.dapr.event.sent"
#: Envelope members that are TopicEventRequest fields, so not extensions (Dapr's list).
_FIELDS = ("id", "source", "type", "specversion", "datacontenttype", "data", "data_base64")
_JSON_TYPES = ("application/json", CLOUDEVENT_CONTENT_TYPE)


class UndeliverableEvent(Exception):
    """Dapr cannot turn the stored envelope into a TopicEventRequest (it retries it)."""


def stored_event(data: bytes, content_type: str, app_id: str) -> CloudEvent:
    """The event the sidecar stores for a publish of ``data``; raises InvalidCloudEvent."""
    if _media(content_type) == CLOUDEVENT_CONTENT_TYPE:
        return _kept_envelope(data)
    content_type = content_type or "text/plain"
    media = _media(content_type)
    value: object
    if media == "application/json":
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = data.decode("utf-8", errors="replace")
    elif media == "application/octet-stream":
        value = bytes(data)
    else:
        value = data.decode("utf-8", errors="replace")
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=app_id,
        type=DAPR_EVENT_TYPE,
        datacontenttype=content_type,
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        data=value,
    )


def _kept_envelope(body: bytes) -> CloudEvent:
    """The caller's envelope as Dapr keeps it: ``data_base64`` decoded, nothing re-read."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidCloudEvent("data", f"is not a JSON object: {exc}") from None
    if type(envelope) is not dict:
        raise InvalidCloudEvent("data", "is not a JSON object")
    data = envelope.pop("data", None)
    encoded = envelope.pop("data_base64", None)
    if encoded is not None:
        data = base64.b64decode(encoded)
    return from_attributes(envelope, data)


def topic_event_request(event: CloudEvent, topic: str, pubsub_name: str) -> api.TopicEventRequest:
    """The streaming API's message for ``event``, built by Dapr's rules."""
    document = to_dict(event)
    document["topic"] = topic
    document["pubsubname"] = pubsub_name
    content_type = document.get("datacontenttype", "")
    request = api.TopicEventRequest(
        id=event.id,
        source=event.source,
        type=event.type,
        spec_version=event.specversion,
        data_content_type=content_type,
        topic=topic,
        pubsub_name=pubsub_name,
    )
    if "data_base64" in document:
        request.data = base64.b64decode(document["data_base64"])
    elif "data" in document:
        value = document["data"]
        if is_text_content_type(content_type):
            if not isinstance(value, str):
                raise UndeliverableEvent(f"data of {content_type!r} must be a string")
            request.data = value.encode("utf-8")
        elif _media(content_type) in _JSON_TYPES:
            request.data = orjson.dumps(value)
        # any other content type: Dapr sends no data at all
    request.extensions.update({k: v for k, v in document.items() if k not in _FIELDS})
    return request


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()
