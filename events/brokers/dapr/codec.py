"""A CloudEvent through a Dapr sidecar's gRPC API, both ways: pure functions.

Publishing: the event goes out in the JSON event format with the content type
``application/cloudevents+json``, so the sidecar keeps our envelope as it is
(it adds ``topic`` and ``pubsubname``, fills ``time`` when missing, and writes
``traceid``/``traceparent``/``tracestate`` from the publish call's trace context,
which :func:`trace_metadata` sets to the event's own, so the trace id survives; an
empty trace field, which the sidecar writes when it has no context, is dropped on
the way back, and a lone legacy ``traceid`` is read as ``traceparent``).

Delivery: the streaming API hands each event over as a ``TopicEventRequest``,
built by Dapr's ``GRPCEnvelopeFromSubscriptionMessage`` (dapr/dapr,
pkg/runtime/pubsub). Its rules decide what we can read back:

- ``id``, ``source``, ``type``, ``spec_version`` and ``data_content_type`` are
  fields; every other envelope member (``subject``, ``time``, ``dataschema``, our
  extensions, Dapr's bookkeeping) is in ``extensions``, a protobuf ``Struct``, so
  integers arrive as doubles and are turned back into integers here.
- ``data`` is bytes: ``data_base64`` decoded; ``data`` JSON-encoded when the
  content type is exactly ``application/json`` (or ``application/cloudevents+json``);
  ``data`` as UTF-8 when it is ``text/*`` or ``application/xml``; and *nothing at
  all* for any other content type, including none and ``+json`` suffixes.

So :func:`publish_payload` writes any payload Dapr would drop or reject as
``data_base64`` (its JSON, or its UTF-8 text), and :func:`from_topic_event` reads
bytes back by the content type: JSON types are parsed, text types decoded, the
rest stay bytes. The one change a round trip can make: a ``str`` payload whose
content type is neither JSON nor text (say ``application/yaml``) arrives as bytes.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from events.bindings.structured import to_dict
from events.cloudevent import CloudEvent, from_attributes, is_json_content_type
from events.errors import InvalidCloudEvent

#: The content type that makes the sidecar keep the caller's envelope.
CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json"
#: Envelope members the sidecar adds for its own bookkeeping; Message.topic carries the topic.
_BOOKKEEPING = ("topic", "pubsubname")
_TRACE_FIELDS = ("traceid", "traceparent", "tracestate")
_DAPR_JSON_TYPES = ("application/json", CLOUDEVENT_CONTENT_TYPE)
_INT32 = (-(2**31), 2**31 - 1)


def publish_payload(event: CloudEvent) -> bytes:
    """The event as the body of a PublishEvent with :data:`CLOUDEVENT_CONTENT_TYPE`."""
    document = to_dict(event)
    data = document.get("data")
    if data is not None and not _dapr_keeps(event.datacontenttype, data):
        del document["data"]
        raw = orjson.dumps(data) if event.is_json else str(data).encode("utf-8")
        document["data_base64"] = base64.b64encode(raw).decode("ascii")
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError as exc:
        raise InvalidCloudEvent("data", f"is not JSON-serializable: {exc}") from None


def from_topic_event(request: Any) -> CloudEvent:
    """The event a ``TopicEventRequest`` carries; raises InvalidCloudEvent if it is not one."""
    attributes: dict[str, Any] = {
        "id": request.id,
        "source": request.source,
        "type": request.type,
        "specversion": request.spec_version,
    }
    content_type = request.data_content_type or None
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    extensions = dict(request.extensions.items())
    for name in _BOOKKEEPING:
        extensions.pop(name, None)
    for name in _TRACE_FIELDS:
        if extensions.get(name) == "":  # the sidecar writes empty trace fields when not tracing
            del extensions[name]
    _trace_fields(extensions)
    for name, value in extensions.items():
        attributes[name] = _attribute(name, value)
    return from_attributes(attributes, _read_data(bytes(request.data), content_type))


def trace_metadata(event: CloudEvent) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata that hands the event's trace context to the sidecar.

    The sidecar writes the envelope's ``traceparent``, ``tracestate`` and ``traceid``
    from the context of the publish call, replacing the event's own. Sent as call
    metadata, the event's context is the parent of the sidecar's: the trace id is kept,
    the span id becomes the sidecar's.
    """
    traceparent = event.extensions.get("traceparent")
    if not isinstance(traceparent, str):
        return ()
    tracestate = event.extensions.get("tracestate")
    if isinstance(tracestate, str) and tracestate:
        return (("traceparent", traceparent), ("tracestate", tracestate))
    return (("traceparent", traceparent),)


def _trace_fields(extensions: dict[str, Any]) -> None:
    """Dapr's trace fields as the CloudEvents extension has them, in place.

    ``traceid`` is Dapr's older name for ``traceparent``, written beside it: it is
    dropped when the two agree, and becomes the ``traceparent`` when it is alone (an
    older sidecar or SDK). A ``traceid`` that differs from ``traceparent`` is kept.
    """
    traceid = extensions.get("traceid")
    if traceid is None:
        return
    if "traceparent" not in extensions:
        extensions["traceparent"] = extensions.pop("traceid")
    elif traceid == extensions["traceparent"]:
        del extensions["traceid"]


def is_text_content_type(content_type: str | None) -> bool:
    """Whether Dapr carries ``data`` of this content type as a string (``text/*``, XML)."""
    media = _media(content_type)
    return media.startswith("text/") or media == "application/xml"


def _dapr_keeps(content_type: str | None, data: Any) -> bool:
    media = _media(content_type)
    if media in _DAPR_JSON_TYPES:
        return True
    # text/json is JSON to us but a string to Dapr, so only plain text is safe as is
    return (
        is_text_content_type(content_type)
        and not is_json_content_type(content_type)
        and (isinstance(data, str))
    )


def _read_data(raw: bytes, content_type: str | None) -> Any:
    if not raw:
        return None
    if is_json_content_type(content_type):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidCloudEvent(
                "data", f"is not valid JSON for content type {content_type!r}: {exc}"
            ) from None
    if is_text_content_type(content_type):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCloudEvent(
                "data", f"is not UTF-8 text for content type {content_type!r}: {exc}"
            ) from None
    return raw


def _attribute(name: str, value: Any) -> Any:
    """A Struct value as a CloudEvent attribute: doubles that hold integers become ints."""
    if isinstance(value, float):
        if value.is_integer() and _INT32[0] <= value <= _INT32[1]:
            return int(value)
        raise InvalidCloudEvent(name, f"must be a string, integer or boolean, got {value!r}")
    if value is None or isinstance(value, str | bool):
        return value
    raise InvalidCloudEvent(name, "must be a string, integer or boolean, got a nested value")


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()
