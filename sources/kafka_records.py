"""What one Kafka record becomes, by the normalization rules: pure functions, no client.

A record is anything with aiokafka's ``ConsumerRecord`` attributes (``topic``,
``partition``, ``offset``, ``timestamp``, ``key``, ``value``, ``headers``).

Records that are CloudEvents already pass through unchanged
(:func:`events.bindings.kafka.from_record`):

* binary mode: a ``ce_specversion`` header; the attributes are the ``ce_*``
  headers, ``datacontenttype`` the ``content-type`` header, the value the data;
* structured mode: ``content-type: application/cloudevents+json``;
* structured JSON without a ``content-type`` header (what Dapr's ``pubsub.kafka``
  and many producers write): a value that is a JSON object with a
  ``specversion`` member. A value that starts like a JSON object and names
  ``"specversion"`` but does not parse is taken as a broken CloudEvent, not as
  text (as the MQTT source does).

Everything else is wrapped (``dev.fnevents.kafka.record``):

* ``source``: ``kafka://{brokers}/{topic}``;
* ``subject``: the record key as UTF-8 text (bytes that are not UTF-8 are
  written ``\\xNN``); no subject for a record without a key or with an empty one;
* ``id``: ``{topic}/{partition}/{offset}``, the same every time the record is read;
* ``time``: the record's timestamp (the producer's CreateTime, or the broker's
  LogAppendTime if the topic says so), RFC 3339 in UTC to the millisecond;
* ``datacontenttype``: the ``content-type`` header when the producer sent one (the
  value read by its charset, as every source does: :mod:`sources.normalize`), else
  detected (JSON, text or bytes).

Tombstones (a record without a value): with ``ce_`` headers it is a CloudEvent
without data (binding 3.2.2) and passes through; without, it is wrapped as an
event with neither ``data`` nor ``datacontenttype``, so a deleted key still
reaches consumers. An empty value (``b""``) is not a tombstone: it is wrapped as
empty ``text/plain``.

Input that claims to be a CloudEvent but is invalid, a ``content-type`` header that
is not UTF-8, or a value that cannot be carried as declared (see
:mod:`sources.normalize`, rule 3) raises :class:`~sources.normalize.Rejected`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events.bindings.kafka import from_record
from events.bindings.structured import from_dict
from events.cloudevent import CloudEvent, now_rfc3339
from events.observability import tracing
from sources.normalize import KIND_TYPES, Origin, Rejected, passthrough, structured_document, wrap

_STRUCTURED = "application/cloudevents"
_MARKER = b'"specversion"'


def record_id(record: Any) -> str:
    """The id of a wrapped (or rejected) record: its position, stable across redelivery."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def to_event(record: Any, brokers: str) -> CloudEvent:
    """The CloudEvent for one record read from ``brokers``; raises Rejected (see above).

    With tracing on, an event without trace context takes the record's ``traceparent``
    and ``tracestate`` headers.
    """
    event = _decode(record, brokers)
    if tracing.enabled and record.headers:
        return tracing.adopt_pairs(event, record.headers)
    return event


def _decode(record: Any, brokers: str) -> CloudEvent:
    binary, content_type = False, None
    for name, raw in record.headers or ():
        lowered = name.lower()
        if lowered == "ce_specversion":
            binary = True
        elif lowered == "content-type" and raw is not None:
            content_type = _text(raw)
    value = record.value
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if binary or media.startswith(_STRUCTURED):
        return passthrough(from_record, record.key, value, record.headers or ())
    if not content_type and value and _MARKER in value:
        document = structured_document(value)
        if document is not None:
            return passthrough(from_dict, document)
    origin = Origin(
        kind="kafka",
        source=f"kafka://{brokers}/{record.topic}",
        id=record_id(record),
        subject=record.key.decode("utf-8", "backslashreplace") if record.key else None,
        time=_time(record.timestamp),
    )
    if value is None:
        return _tombstone(origin)
    return wrap(value, origin, content_type)


def _tombstone(origin: Origin) -> CloudEvent:
    return CloudEvent(
        id=origin.id,
        source=origin.source,
        type=KIND_TYPES[origin.kind],
        subject=origin.subject,
        time=origin.time or now_rfc3339(),
    )


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("the content-type header is not UTF-8 text") from None


def _time(millis: int | None) -> str | None:
    """A record timestamp as RFC 3339; None when the record has none (-1, old formats)."""
    if millis is None or millis < 0:
        return None
    stamp = datetime.fromtimestamp(millis / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
