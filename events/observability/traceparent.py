"""W3C Trace Context on a CloudEvent: the distributed-tracing extension, as pure functions.

The CloudEvents distributed-tracing extension puts the *creation* context of an
event in its ``traceparent`` and ``tracestate`` attributes. Once an event has one,
no hop changes it (each hop's own context travels in the transport's headers);
:func:`adopt` only fills it in when the event has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from events.cloudevent import CloudEvent

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: Dapr's older name for the same value; Dapr writes both.
TRACEID = "traceid"

# version 00 exactly; a later version may append fields after the flags (W3C 3.2.4)
_VALID = re.compile(r"[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?")


def is_valid(traceparent: object) -> bool:
    """Whether ``traceparent`` is a W3C traceparent value we can continue."""
    return (
        isinstance(traceparent, str)
        and _VALID.fullmatch(traceparent) is not None
        and not traceparent.startswith("ff")
        and (traceparent[:2] != "00" or len(traceparent) == 55)
    )


def adopt(event: CloudEvent, traceparent: object, tracestate: object = None) -> CloudEvent:
    """``event`` carrying ``traceparent`` (and ``tracestate``) from the transport, unless it
    already has a traceparent (never overwritten) or the value is not a valid one."""
    if TRACEPARENT in event.extensions:
        return event
    traceparent, tracestate = _text(traceparent), _text(tracestate)
    if not is_valid(traceparent):
        return event
    if tracestate:
        return event.evolve(traceparent=traceparent, tracestate=tracestate)
    return event.evolve(traceparent=traceparent)


def adopt_pairs(event: CloudEvent, pairs: Iterable[tuple[str, object]]) -> CloudEvent:
    """:func:`adopt` from (name, value) pairs: MQTT 5 user properties, Kafka headers."""
    if TRACEPARENT in event.extensions:
        return event
    found: dict[str, object] = {}
    for name, value in pairs:
        lowered = name.lower()
        if lowered in (TRACEPARENT, TRACESTATE):
            found.setdefault(lowered, value)
    return adopt(event, found.get(TRACEPARENT), found.get(TRACESTATE))


def _text(value: object) -> str | None:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("ascii").strip()
        except UnicodeDecodeError:
            return None
    return value.strip() if isinstance(value, str) else None
