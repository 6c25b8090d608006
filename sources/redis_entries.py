"""What a Redis stream entry or Pub/Sub message becomes: pure functions, no client.

Stream entries (``XADD stream * field value ...``), first rule that applies:

1. a ``specversion`` field: a CloudEvent spread over the fields (binary mode, as
   MQTT 5 user properties carry it): every field named like an attribute
   (``[a-z0-9]+``) is one, ``data`` is the payload, read by ``datacontenttype``;
   other fields are left to the application and ignored. Passed through;
2. a ``data`` field holding a structured CloudEvent (a JSON object with
   ``specversion``), which is what Dapr's and fnevents' ``pubsub.redis`` write
   (the Dapr envelope). Passed through; the envelope's own bookkeeping
   (``topic``, ``pubsubname``, and ``traceid`` when it repeats ``traceparent``) is
   dropped, as the bus does;
3. anything else is wrapped (``dev.fnevents.redis.entry``): the payload is the
   ``data`` field when it is the only field, else every field as a JSON object of
   strings (``XADD s * vehicle v7 speed 91.5`` gives ``{"vehicle": "v7",
   "speed": "91.5"}``: Redis values are strings, nothing is guessed). ``id`` is
   ``{stream}/{entry-id}``, ``time`` the entry id's milliseconds (Redis's clock for
   ``*`` ids).

A Pub/Sub message is its payload: a structured CloudEvent passes through as in 2,
anything else is wrapped (``dev.fnevents.redis.message``, ``id``
``redis:{hash of channel and payload}``).

Input that claims to be a CloudEvent but is invalid, a multi-field entry with a
field that is not UTF-8 text, or a payload that cannot be carried (JSON nested too
deeply: :mod:`sources.normalize`, rule 3) raises :class:`~sources.normalize.Rejected`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial

import orjson

from events.bindings import data as _data
from events.bus import envelope
from events.cloudevent import CloudEvent
from sources.normalize import (
    Origin,
    Rejected,
    content_id,
    passthrough,
    structured_document,
    wrap,
)

Fields = Mapping[bytes, bytes]
_ATTRIBUTE_NAME = re.compile(rb"[a-z0-9]+")


def stream_event(fields: Fields, address: str, stream: str, entry_id: str) -> CloudEvent:
    """The event for one stream entry; raises Rejected for input that cannot be one."""
    if b"specversion" in fields:
        return passthrough(_from_fields, fields)
    data = fields.get(b"data")
    if data is not None and (event := _structured(data)) is not None:
        return event
    origin = Origin(
        kind="redis-stream",
        source=f"redis://{address}/{stream}",
        subject=stream,
        id=f"{stream}/{entry_id}",
        time=_entry_time(entry_id),
    )
    if data is not None and len(fields) == 1:
        return wrap(data, origin)
    return wrap(orjson.dumps(_text_map(fields)), origin, "application/json")


def channel_event(payload: bytes, address: str, channel: str) -> CloudEvent:
    """The event for one Pub/Sub message on ``channel``; raises Rejected as above."""
    event = _structured(payload)
    if event is not None:
        return event
    origin = Origin(
        kind="redis-pubsub",
        source=f"redis://{address}/{channel}",
        subject=channel,
        id=f"redis:{content_id(channel, payload)}",
    )
    return wrap(payload, origin)


def entry_bytes(fields: Fields) -> bytes:
    """An entry as bytes for the dead letter: the ``data`` field alone as it is, else
    a JSON object of the fields (bytes that are not UTF-8 written as ``\\xNN``)."""
    if len(fields) == 1 and b"data" in fields:
        return bytes(fields[b"data"])
    return orjson.dumps(
        {
            k.decode("utf-8", "backslashreplace"): v.decode("utf-8", "backslashreplace")
            for k, v in fields.items()
        }
    )


def _structured(raw: bytes) -> CloudEvent | None:
    """The CloudEvent in ``raw`` if it is a JSON object with ``specversion``, else None."""
    if b"specversion" not in raw:  # cheap test first: most payloads are not events
        return None
    if structured_document(raw, broken_is_text=True) is None:
        return None
    return passthrough(partial(envelope.decode, topic="", pubsub_name="", fallback_id=""), raw)


def _from_fields(fields: Fields) -> CloudEvent:
    attributes = {
        name.decode(): _data.from_utf8(name.decode(), value)
        for name, value in fields.items()
        if name != b"data" and _ATTRIBUTE_NAME.fullmatch(name)
    }
    return _data.from_binary(attributes, fields.get(b"data"))


def _text_map(fields: Fields) -> dict[str, str]:
    try:
        return {k.decode(): v.decode() for k, v in fields.items()}
    except UnicodeDecodeError:
        raise Rejected(
            "a field is not UTF-8 text, so the entry cannot become a JSON object of its "
            "fields (write binary payloads as the only field, 'data')"
        ) from None


def _entry_time(entry_id: str) -> str | None:
    millis, _, _ = entry_id.partition("-")
    if not millis.isdigit():
        return None
    stamp = datetime.fromtimestamp(int(millis) / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
