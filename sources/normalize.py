"""Normalization: the rules every source follows to turn input into CloudEvents.

1. Input that already is a CloudEvent passes through unchanged, in whatever
   binding the transport has (each source decodes its own binding and calls
   :func:`passthrough`).
2. Anything else is wrapped by :func:`wrap`:
   - ``type``: one per source kind (``KIND_TYPES``);
   - ``source``: the origin, e.g. ``mqtt://broker:1883/vehicles/7/telemetry``;
   - ``subject``: the MQTT topic, Kafka key or stream name;
   - ``time``: the broker's timestamp when it has one, else now;
   - ``datacontenttype``: the type the transport declared, read by the rule every
     binding follows (:func:`events.bindings.data.decode_payload`: JSON parsed, text
     decoded with its declared charset and kept as declared, JSON in another
     charset re-declared ``charset=utf-8``, anything else bytes); when none was
     declared, ``application/json`` if the payload parses as JSON (``data`` is then
     the parsed value), ``text/plain`` for other UTF-8 text,
     ``application/octet-stream`` otherwise;
   - ``id``: stable across redelivery of the same upstream message (Kafka
     ``topic/partition/offset``, stream ``name/entry-id``; for transports without
     positions, a hash of where it came from and what it says).
3. Input that cannot become an event, or could never be delivered as one, raises
   :class:`Rejected`: it claims to be a CloudEvent but is invalid; it declares JSON
   that does not parse, a charset that is unknown or not a text encoding, or text
   that does not decode by it; its JSON is nested deeper than can be written
   (:data:`events.bindings.data.MAX_DATA_DEPTH`). The source sends it to its dead
   letter with the reason and moves on (HTTP ingest answers 400).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from time import time_ns
from typing import Any, NamedTuple

import orjson

from events.bindings.data import check_depth, decode_payload, sniff_data
from events.cloudevent import CloudEvent
from events.errors import PROBLEM_LIMIT, FnEventsError, InvalidCloudEvent, quote, shorten

KIND_TYPES = {
    "mqtt": "dev.fnevents.mqtt.message",
    "kafka": "dev.fnevents.kafka.record",
    "redis-stream": "dev.fnevents.redis.entry",
    "redis-pubsub": "dev.fnevents.redis.message",
    "http": "dev.fnevents.http.request",
}


class Rejected(FnEventsError, ValueError):
    """Input that cannot become a CloudEvent; ``reason`` says why, in bounded length and
    always writable as UTF-8 (it travels in the dead letter, and quotes the input)."""

    def __init__(self, reason: str) -> None:
        self.reason = bounded(reason)
        super().__init__(self.reason)


def bounded(reason: str) -> str:
    """A reason as it may be told: at most PROBLEM_LIMIT characters, and UTF-8 (a lone
    surrogate, which stands for a raw byte of the input, is written ``\\udcXX``)."""
    reason = shorten(reason, PROBLEM_LIMIT)
    if not reason.isascii():
        reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    return reason


class Origin(NamedTuple):
    """Where one piece of input came from, in CloudEvents terms. (A named tuple: made once
    per input, and half the cost of a frozen dataclass.)"""

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


#: (whole second since the epoch, its "YYYY-MM-DDTHH:MM:SS"): a stream stamps many events
#: within one second, and formatting a datetime costs three times what this does.
_second: tuple[int, str] = (-1, "")


def now() -> str:
    """The current time as :func:`events.cloudevent.now_rfc3339` writes it (UTC, six
    fraction digits, ``Z``), from the same clock, truncated to the microsecond as
    ``datetime.now`` does."""
    return stamp(time_ns())


def stamp(ns: int) -> str:
    """``ns`` nanoseconds since the epoch (1970 to 9999) in RFC 3339, as ``now()`` writes it."""
    global _second
    second, fraction = divmod(ns, 1_000_000_000)
    cached = _second  # one read: another thread may replace it meanwhile
    if second != cached[0]:
        cached = _second = (second, _seconds_text(second))
    return f"{cached[1]}.{fraction // 1000:06d}Z"


def _seconds_text(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()


def content_ids(first: str) -> Callable[[bytes], str]:
    """``content_id(first, part)`` as a function of ``part``, for a ``first`` that stays the
    same (HTTP ingest's path): its share of the hash is computed once."""
    prefix = hashlib.sha256(first.encode())
    prefix.update(b"\x00")

    def content_id_of(part: bytes) -> str:
        digest = prefix.copy()
        digest.update(part)
        digest.update(b"\x00")
        return digest.hexdigest()[:32]

    return content_id_of


def wrap(payload: bytes, origin: Origin, content_type: str | None = None) -> CloudEvent:
    """Wrap a payload that is not a CloudEvent; Rejected for what cannot be one (see 3.)."""
    try:
        data, detected = (
            decode_payload(payload, content_type) if content_type else sniff_data(payload)
        )
        return CloudEvent(
            id=origin.id,
            source=origin.source,
            type=KIND_TYPES[origin.kind],
            datacontenttype=detected,
            subject=origin.subject,
            time=origin.time or now(),
            data=data,
        )
    except InvalidCloudEvent as exc:
        raise Rejected(_payload_problem(exc, content_type)) from None


def passthrough(decode: Any, *args: Any) -> CloudEvent:
    """Run a binding decoder; an invalid CloudEvent becomes Rejected with the attribute."""
    try:
        return decode(*args)
    except InvalidCloudEvent as exc:
        raise _invalid(exc) from None


def _invalid(exc: InvalidCloudEvent) -> Rejected:
    return Rejected(f"claims to be a CloudEvent but is invalid: {exc}")


def _payload_problem(exc: InvalidCloudEvent, content_type: str | None) -> str:
    if exc.attribute == "data":
        return exc.problem if exc.problem.startswith("declared") else f"the payload {exc.problem}"
    if exc.attribute == "datacontenttype":  # e.g. a charset that is not a text encoding
        return f"content type {quote(content_type)} {exc.problem}"
    return str(exc)


def structured_document(payload: bytes, broken_is_text: bool = False) -> dict[str, Any] | None:
    """The JSON object in ``payload`` if it is meant as a structured CloudEvent (it has
    ``specversion``), else None; Rejected if it starts as an object but does not parse
    (unless ``broken_is_text``: then it is None too), or if its data is nested too deeply
    to deliver."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if payload.lstrip()[:1] == b"{" and not broken_is_text:
            raise Rejected(
                f"looks like a structured CloudEvent but is not valid JSON: {exc}"
            ) from None
        return None
    if not isinstance(document, dict) or "specversion" not in document:
        return None
    try:
        check_depth(payload, document.get("data"))
    except InvalidCloudEvent as exc:
        raise _invalid(exc) from None
    return document
