"""Dapr's pub/sub envelope: the bytes every native backend writes and reads.

Writing: the event as structured CloudEvents JSON plus the ``topic`` and
``pubsubname`` extensions Dapr adds (and ``traceid`` mirroring ``traceparent``),
so a Dapr app subscribed to the same topic receives a normal Dapr event.

Reading: a structured CloudEvent (what Dapr or fnevents wrote) becomes that
event, minus the bus bookkeeping extensions (the topic is ``Message.topic``); a
``traceid`` without a ``traceparent`` (older Dapr) is read as the ``traceparent``.
A payload that is not a CloudEvent at all (Dapr's ``rawPayload=true``, or any
other producer) is wrapped the way Dapr wraps it: type ``com.dapr.event.sent``,
with an id the backend derives from the message's position, so a redelivery
keeps its id. A payload that claims to be a CloudEvent but is invalid raises
:class:`InvalidCloudEvent`; backends turn that into :func:`undecodable` so it
reaches a dead letter instead of stopping the consumer.
"""

from __future__ import annotations

from typing import Any

import orjson

from events.bindings.data import check_depth
from events.bindings.structured import from_dict, to_dict
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent

RAW_TYPE = "com.dapr.event.sent"
UNDECODABLE_TYPE = "dev.fnevents.bus.undecodable"


def encode(event: CloudEvent, topic: str, pubsub_name: str) -> bytes:
    envelope = to_dict(event)
    envelope["topic"] = topic
    envelope["pubsubname"] = pubsub_name
    if "traceparent" in envelope and "traceid" not in envelope:
        envelope["traceid"] = envelope["traceparent"]
    return orjson.dumps(envelope)


def decode(raw: bytes, *, topic: str, pubsub_name: str, fallback_id: str) -> CloudEvent:
    """The event in ``raw``; raises InvalidCloudEvent for an invalid CloudEvent."""
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _wrap(raw, "application/octet-stream", topic, pubsub_name, fallback_id)
    if type(document) is not dict or "specversion" not in document:
        return _wrap(document, "application/json", topic, pubsub_name, fallback_id)
    # data nested deeper than any event can be written must not get past the bus: the
    # publish, POST or dead letter that writes it would fail after the message was taken
    check_depth(raw, document.get("data"))
    pop = document.pop
    pop("topic", None)
    pop("pubsubname", None)
    traceid = document.get("traceid")
    if traceid is not None:  # Dapr's older name for traceparent, written beside it
        if "traceparent" not in document:
            document["traceparent"] = pop("traceid")
        elif traceid == document["traceparent"]:
            del document["traceid"]
    return from_dict(document, owned=True)


def undecodable(
    raw: bytes, reason: InvalidCloudEvent | str, *, topic: str, fallback_id: str
) -> CloudEvent:
    """A stand-in event carrying bytes that could not be decoded, for the dead letter."""
    return CloudEvent(
        id=fallback_id,
        source=f"/topics/{topic}",
        type=UNDECODABLE_TYPE,
        datacontenttype="application/octet-stream",
        extensions={"fnerrorreason": f"undecodable message on topic {topic}: {reason}"},
        data=bytes(raw),
    )


def _wrap(data: Any, content_type: str, topic: str, pubsub_name: str, fallback_id: str):
    return CloudEvent(
        id=fallback_id,
        source=f"/pubsub/{pubsub_name}/topics/{topic}",
        type=RAW_TYPE,
        datacontenttype=content_type,
        data=data,
    )
