"""Filters on a Trigger's inputs and subscribers (the ``filter`` extension).

The implementation is being written; the interface below is what the runner and
subscribers rely on.
"""

from __future__ import annotations

from typing import Protocol

from events.cloudevent import CloudEvent


class EventFilter(Protocol):
    """A compiled filter: whether one event passes. Never raises."""

    description: str

    def matches(self, event: CloudEvent) -> bool: ...
