"""The explicit registry of source kinds: EventSource ``spec`` key -> Source class."""

from __future__ import annotations

from typing import Any

from sources.contract import Source, SourceIdentity
from sources.cron import CronSource
from sources.http import HttpSource

SOURCE_CLASSES: dict[str, type[Source]] = {
    "cron": CronSource,
    "http": HttpSource,
}


def make_source(eventsource: Any, kind: str, event: str) -> Source:
    """Build the Source for one event of a loaded EventSource; validates its settings."""
    settings = getattr(eventsource.resource.spec, kind)[event]
    identity = SourceIdentity(eventsource.namespace, eventsource.name, event)
    return SOURCE_CLASSES[kind](identity, settings)
