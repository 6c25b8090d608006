"""The last events that passed, with what became of each, for the web console.

Bounded: at most ``size`` events are held (the oldest goes first), each with at most
``outcomes_per_event`` outcomes and its data trimmed to ``data_chars`` characters, so
memory stays flat however busy the pipeline is.

Only a process started with ``--console`` makes one; everywhere else the holder is
None and the hot path only tests that (no call, no allocation).

``where`` names the place an event was seen: ``topic:NAME`` (a source or a
subscriber published it there) or ``trigger:NAMESPACE/NAME`` (a trigger received
it). The same event seen at two places is two entries; each keeps its own outcomes.
Not thread-safe: called from the event loop only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import orjson

from events.cloudevent import CloudEvent

#: Outcomes a subscriber (or a trigger's input filter) records.
DELIVERED = "delivered"
RETRIED = "retried"
FILTERED = "filtered"
DEAD_LETTERED = "dead-lettered"
PUBLISHED = "published"


class RecentEvents:
    def __init__(
        self, size: int = 300, outcomes_per_event: int = 16, data_chars: int = 400
    ) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.outcomes_per_event = outcomes_per_event
        self.data_chars = data_chars
        self._entries: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        #: subscriber -> the reason of its last failed delivery attempt (one per
        #: subscriber of the manifests: bounded by them)
        self.last_errors: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def seen(self, where: str, event: CloudEvent, via: str = "") -> None:
        """``event`` passed ``where`` (``via``: which input or source, if any)."""
        key = (where, event.id)
        if key in self._entries:  # a redelivery: keep its outcomes, move it to the front
            self._entries.move_to_end(key)
            return
        self._entries[key] = {
            "where": where,
            "via": via,
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "time": time.time(),
            "data": trimmed_data(event, self.data_chars),
            "outcomes": [],
        }
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def outcome(
        self, where: str, event_id: str, subscriber: str, outcome: str, detail: str = ""
    ) -> None:
        """What ``subscriber`` did with an event seen at ``where``; ignored when that
        event has already left the ring."""
        if outcome == RETRIED:  # every failure, the last before a dead letter included
            self.last_errors[subscriber] = detail
        entry = self._entries.get((where, event_id))
        if entry is None:
            return
        outcomes = entry["outcomes"]
        if len(outcomes) >= self.outcomes_per_event:
            del outcomes[0]
        outcomes.append(
            {"subscriber": subscriber, "outcome": outcome, "detail": detail, "time": time.time()}
        )

    def latest(self, where: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` entries (of ``where`` only, if given), newest first;
        copies, safe to serialize while events keep arriving."""
        found: list[dict[str, Any]] = []
        for entry in reversed(self._entries.values()):
            if where is None or entry["where"] == where:
                found.append({**entry, "outcomes": list(entry["outcomes"])})
                if len(found) >= limit:
                    break
        return found


def trimmed_data(event: CloudEvent, limit: int) -> str | None:
    """``event``'s data as text, cut at ``limit`` characters (None without data)."""
    data = event.data
    if data is None:
        return None
    if isinstance(data, bytes | bytearray | memoryview):
        text = bytes(data).decode("utf-8", errors="replace")
    elif isinstance(data, str):
        text = data
    else:
        try:
            text = orjson.dumps(data).decode()
        except TypeError:
            text = repr(data)
    return text if len(text) <= limit else text[:limit] + "…"
