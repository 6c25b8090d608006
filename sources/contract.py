"""The Source contract: one small interface every source kind implements.

A source runs until it is cancelled and hands each CloudEvent to ``emit``.
``emit`` returns only once the event is safe (the bus holds it, or the sink took
it); a source commits its own upstream position (Kafka offset, MQTT ack, stream
ack) only after that, which is what makes every source at least once.
Reconnect and backoff for sources live in the runtime; a source raises
``FnEventsError(retriable=True)`` when its upstream is unreachable.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from events.cloudevent import CloudEvent

Emit = Callable[[CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class SourceIdentity:
    """Where a source's events come from, in manifest terms."""

    namespace: str
    eventsource: str
    event: str

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.eventsource}/{self.event}"


class Source(abc.ABC):
    """One event of one EventSource, e.g. the cron event ``sample-five``."""

    #: The key under EventSource ``spec`` this source implements: ``cron``, ``kafka``, ...
    kind: ClassVar[str]

    def __init__(self, identity: SourceIdentity, settings: Any) -> None:
        self.identity = identity
        self.settings = settings

    @abc.abstractmethod
    async def run(self, emit: Emit) -> None:
        """Produce events until cancelled. Must not return early unless the source is finite."""

    def describe(self) -> str:
        """One line for startup output."""
        return f"{self.kind} {self.identity.label}"
