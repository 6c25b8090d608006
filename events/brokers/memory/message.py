"""One delivery from the in-memory bus: the :class:`Entry` a group holds, and its message.

A message settles through the member that handed it out
(:mod:`events.brokers.memory.member`). It names what it calls there in the
:class:`Member` protocol rather than importing that module.
"""

from __future__ import annotations

from typing import Protocol

from events.bus.contract import Message
from events.cloudevent import CloudEvent


class Entry:
    """One published event in one group, from its publish until its ack."""

    __slots__ = ("attempt", "event", "key")

    def __init__(self, event: CloudEvent, key: str | None) -> None:
        self.event = event
        self.key = key
        self.attempt = 1


class Backlog(Protocol):
    """A group's count of events not yet acked."""

    def done(self) -> None: ...


class Member(Protocol):
    """What a message calls on the member that handed it out."""

    @property
    def group(self) -> Backlog: ...

    def settle(self, entry: Entry) -> bool: ...

    def redeliver(self, entry: Entry, delay: float) -> None: ...


class MemoryMessage(Message):
    __slots__ = ("_entry", "_member")

    def __init__(self, topic: str, entry: Entry, member: Member) -> None:
        super().__init__(topic, entry.event, entry.key, entry.attempt)
        self._entry = entry
        self._member = member

    async def ack(self) -> None:
        if self._member.settle(self._entry):
            self._member.group.done()

    async def nack(self, delay: float = 0.0) -> None:
        if self._member.settle(self._entry):
            self._member.redeliver(self._entry, delay)
