"""Normalization: the rules every source follows to turn input into CloudEvents.

1. Input that already is a CloudEvent passes through unchanged, in whatever
   binding the transport has (each source decodes its own binding and calls
   :func:`passthrough`).
2. Anything else is wrapped by :func:`wrap`:
   - ``type``: one per source kind (``KIND_TYPES``);
   - ``source``: the origin, e.g. ``mqtt://broker:1883/vehicles/7/telemetry``;
   - ``subject``: the MQTT topic, Kafka key or stream name;
   - ``time``: the broker's timestamp when it has one, else now;
   - ``datacontenttype``: ``application/json`` when the payload parses as JSON
     (``data`` is then the parsed value), ``text/plain`` for other UTF-8 text,
     ``application/octet-stream`` otherwise -- unless the transport declared one;
   - ``id``: stable across redelivery of the same upstream message (Kafka
     ``topic/partition/offset``, stream ``name/entry-id``; for transports without
     positions, a hash of where it came from and what it says).
3. Input that cannot become an event -- it claims to be a CloudEvent but is
   invalid, or it declares JSON that does not parse -- raises :class:`Rejected`;
   the source sends it to its dead letter with the reason and moves on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from events.bindings.data import sniff_data
from events.cloudevent import CloudEvent, is_json_content_type, now_rfc3339
from events.errors import FnEventsError, InvalidCloudEvent

KIND_TYPES = {
    "mqtt": "dev.fnevents.mqtt.message",
    "kafka": "dev.fnevents.kafka.record",
    "redis-stream": "dev.fnevents.redis.entry",
    "redis-pubsub": "dev.fnevents.redis.message",
    "http": "dev.fnevents.http.request",
}


class Rejected(FnEventsError, ValueError):
    """Input that cannot become a CloudEvent; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Origin:
    """Where one piece of input came from, in CloudEvents terms."""

    kind: str
    source: str
    id: str
    subject: str | None = None
    time: str | None = None


def content_id(*parts: str | bytes) -> str:
    """A stable id for input without a broker position: a hash of its parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


def wrap(payload: bytes, origin: Origin, content_type: str | None = None) -> CloudEvent:
    """Wrap a payload that is not a CloudEvent. Raises Rejected for declared-but-bad JSON."""
    data, detected = _detect(payload, content_type)
    return CloudEvent(
        id=origin.id,
        source=origin.source,
        type=KIND_TYPES[origin.kind],
        datacontenttype=detected,
        subject=origin.subject,
        time=origin.time or now_rfc3339(),
        data=data,
    )


def passthrough(decode: Any, *args: Any) -> CloudEvent:
    """Run a binding decoder; an invalid CloudEvent becomes Rejected with the attribute."""
    try:
        return decode(*args)
    except InvalidCloudEvent as exc:
        raise Rejected(f"claims to be a CloudEvent but is invalid: {exc}") from None


def _detect(payload: bytes, content_type: str | None) -> tuple[Any, str]:
    if content_type:
        if is_json_content_type(content_type):
            try:
                return orjson.loads(payload), content_type
            except orjson.JSONDecodeError as exc:
                raise Rejected(f"declared {content_type} but is not valid JSON: {exc}") from None
        if content_type.startswith("text/"):
            return payload.decode("utf-8", "replace"), content_type
        return bytes(payload), content_type
    return sniff_data(payload)


def structured_document(payload: bytes) -> dict[str, Any] | None:
    """The JSON object in ``payload`` if it is meant as a structured CloudEvent (it has
    ``specversion``), else None; Rejected if it starts as an object but does not parse."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if payload.lstrip()[:1] == b"{":
            raise Rejected(
                f"looks like a structured CloudEvent but is not valid JSON: {exc}"
            ) from None
        return None
    return document if isinstance(document, dict) and "specversion" in document else None
