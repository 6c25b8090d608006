"""Bounded redelivery: a message that keeps failing goes to a dead letter, not round
and round forever (Dapr's Kafka component retries a poison message every 5 s
without end, stalling its partition; we don't).

:func:`bounded` wraps any backend's subscription. A message delivered more than
``max_attempts`` times, or one the backend could not decode at all, is published
to ``dead_letter_topic`` with the reason and acked, and the consumer moves on.
"""

from __future__ import annotations

from events.bus.contract import EventBus, Message, Subscription
from events.bus.envelope import UNDECODABLE_TYPE

DEFAULT_MAX_ATTEMPTS = 10


class BoundedSubscription(Subscription):
    def __init__(
        self, inner: Subscription, bus: EventBus, max_attempts: int, dead_letter_topic: str
    ) -> None:
        self._inner = inner
        self._bus = bus
        self._max_attempts = max_attempts
        self._dead_letter_topic = dead_letter_topic
        #: Messages this wrapper dead-lettered itself (poison or undecodable).
        self.dead_lettered = 0

    async def __anext__(self) -> Message:
        while True:
            message = await self._inner.__anext__()
            reason = rejection(message, self._max_attempts)
            if reason is None:
                return message
            await self._bury(message, reason)

    async def _bury(self, message: Message, reason: str) -> None:
        await bury(self._bus, self._dead_letter_topic, message, reason, message.attempt - 1)
        self.dead_lettered += 1

    async def close(self, drain_timeout: float = 5.0) -> None:
        await self._inner.close(drain_timeout)


def rejection(message: Message, max_attempts: int) -> str | None:
    """Why ``message`` goes to the dead letter instead of its handler; None if it doesn't."""
    if message.event.type == UNDECODABLE_TYPE:
        return str(message.event.extensions.get("fnerrorreason", "undecodable message"))
    if message.attempt > max_attempts:
        return (
            f"gave up after {message.attempt - 1} deliveries on topic {message.topic} "
            f"(the limit is {max_attempts})"
        )
    return None


async def bury(
    bus: EventBus, dead_letter_topic: str, message: Message, reason: str, attempts: int
) -> None:
    """Publish ``message``'s event to the dead letter with why and where from, then ack it."""
    letter = message.event.evolve(
        fnerrorreason=reason, fnerrorattempts=attempts, fnerrortopic=message.topic
    )
    await bus.publish(dead_letter_topic, letter, key=message.key)
    await message.ack()


def bounded(
    subscription: Subscription, bus: EventBus, max_attempts: int, dead_letter_topic: str
) -> BoundedSubscription:
    return BoundedSubscription(subscription, bus, max_attempts, dead_letter_topic)
