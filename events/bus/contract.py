"""The EventBus contract every backend implements.

Lifecycle: ``await bus.start()`` connects (backends report an unreachable broker by
raising :class:`BusError` with ``retriable=True``; retry policy lives in the
runtime, not in backends). ``publish`` returns only once the broker has accepted
the event. ``subscribe(topic, group)`` returns a :class:`Subscription`: members of
one group share the work; each group gets every event published after the group
first subscribed (``subscribe`` returns only once that holds). ``close()`` is
idempotent and drains subscriptions.

Delivery is at least once. A message stays on the bus until ``ack()``; ``nack()``
(or a subscriber that goes away without acking) makes it available again with
``attempt`` increased. Handlers must therefore tolerate duplicates, which carry
the same CloudEvent ``id``.

The conformance suite in ``tests/bus/`` is the executable definition of this
contract; every backend runs it.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from types import TracebackType
from typing import ClassVar

from events.cloudevent import CloudEvent

#: Guarantees beyond the contract that not every broker can give. Each broker's descriptor
#: (``events.brokers.<name>.BROKER``) lists the ones it cannot give, with the reason.
#: Events with the same key are first delivered in publish order (a redelivery after a
#: nack comes after later events: holding them back would stall the key).
ORDERED_KEYS = "ordered-keys"
#: A message's ``attempt`` keeps counting when another member of the group takes it over.
ATTEMPTS_SURVIVE_MEMBERS = "attempts-survive-members"
GUARANTEES = (ORDERED_KEYS, ATTEMPTS_SURVIVE_MEMBERS)


class Message(abc.ABC):
    """One delivery of one event to one group member.

    ``ack`` and ``nack`` are idempotent: only the first settlement counts.
    """

    __slots__ = ("attempt", "event", "key", "topic")

    def __init__(self, topic: str, event: CloudEvent, key: str | None, attempt: int) -> None:
        self.topic = topic
        self.event = event
        self.key = key
        #: 1 for the first delivery, 2 for the first redelivery, and so on.
        self.attempt = attempt

    @abc.abstractmethod
    async def ack(self) -> None:
        """The work is done: remove the event from the bus for this group.

        A backend may batch acks and return before the broker records one, provided
        the message is never handed out again by this member and ``close`` flushes
        pending acks before it returns; a crash in between redelivers (a duplicate,
        never a loss)."""

    @abc.abstractmethod
    async def nack(self, delay: float = 0.0) -> None:
        """The work failed: deliver the event again after ``delay`` seconds."""


class _ClosedOnExit(abc.ABC):
    """``async with`` support: leaving the block closes the object."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release everything; idempotent."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Subscription(_ClosedOnExit):
    """A group member's stream of messages. Iterate it; close it (or use ``async with``)."""

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> Message:
        """The next message; raises ``StopAsyncIteration`` once closed."""

    @abc.abstractmethod
    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop taking new messages and wait up to ``drain_timeout`` seconds for the ones
        handed out to be settled. Messages still unsettled go back to the group.
        Idempotent."""

    async def __aenter__(self) -> Subscription:
        return self


class EventBus(_ClosedOnExit):
    """A topic-based, consumer-group event bus. See the module docstring for the rules."""

    #: The Dapr component type this backend implements, e.g. ``pubsub.redis``.
    component_type: ClassVar[str]
    #: True for a bus inside this process: its calls wait on no socket and no timeout.
    in_process: ClassVar[bool] = False

    async def start(self) -> None:
        """Connect to the broker. Raise ``BusError(retriable=True)`` if it is unreachable."""

    @abc.abstractmethod
    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        """Put ``event`` on ``topic``; return once the broker holds it."""

    @abc.abstractmethod
    async def subscribe(self, topic: str, group: str) -> Subscription:
        """Join ``group`` on ``topic``; return once the group exists on the broker, so
        every event published after this returns reaches the group."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Drain and close every subscription, then disconnect. Idempotent."""

    def describe(self) -> str:
        """A short human description for startup output, e.g. ``redis at localhost:6379``."""
        return self.component_type

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self
