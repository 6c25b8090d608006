"""The explicit registry of source kinds: EventSource ``spec`` key -> Source class.

Kinds are imported when used, so a process that reads MQTT never imports the
Kafka client.
"""

from __future__ import annotations

import importlib
from typing import Any

from events.brokers import BROKERS
from events.errors import BackendNotAvailable
from sources.contract import Source, SourceIdentity

#: The kinds that need no broker, then one per broker that feeds a source of its name.
SOURCE_CLASSES: dict[str, str] = {
    "cron": "sources.cron:CronSource",
    "http": "sources.http:HttpSource",
    **{broker.name: broker.source for broker in BROKERS if broker.source},
}


def source_class(kind: str) -> type[Source]:
    """The class for ``kind``; BackendNotAvailable if this build cannot load it."""
    module, _, name = SOURCE_CLASSES[kind].partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise BackendNotAvailable(
            f"{kind} sources are not available in this version of fnevents ({exc})"
        ) from exc


def make_source(eventsource: Any, kind: str, event: str) -> Source:
    """Build the Source for one event of a loaded EventSource; validates its settings."""
    settings = getattr(eventsource.resource.spec, kind)[event]
    identity = SourceIdentity(eventsource.namespace, eventsource.name, event)
    return source_class(kind)(identity, settings)
