"""The Source contract: one small interface every source kind implements.

A source runs until it is cancelled and hands each CloudEvent to
``outlet.emit``, which returns only once the event is safe (the bus holds it, or
the sink took it). A source commits its own upstream position (Kafka offset,
MQTT ack, stream ack) only after that, which is what makes every source at
least once.

Input it cannot turn into an event (a payload that claims to be a CloudEvent but
is invalid, JSON that does not parse) goes to ``outlet.reject`` with the raw
bytes and the reason; that also returns once the dead letter is safe, and the
source then commits past it. A bad payload never stops a source.

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
#: (raw bytes, reason, an id for the rejected message) -> returns once dead-lettered
Reject = Callable[[bytes, str, str], Awaitable[None]]


async def _no_dead_letter(raw: bytes, reason: str, origin_id: str) -> None:
    raise RuntimeError(f"rejected input {origin_id} with nowhere to put it: {reason}")


@dataclass(frozen=True)
class Outlet:
    """Where a source's output goes: events to ``emit``, bad input to ``reject``."""

    emit: Emit
    reject: Reject = _no_dead_letter


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
    async def run(self, outlet: Outlet) -> None:
        """Produce events until cancelled. Must not return early unless the source is finite."""

    def describe(self) -> str:
        """One line for startup output."""
        return f"{self.kind} {self.identity.label}"

    def notices(self) -> list[str]:
        """Warnings a user should see at startup (e.g. a guarantee this source cannot give)."""
        return []
