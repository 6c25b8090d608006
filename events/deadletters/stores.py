"""Where dead letters can be read from another process, and how.

A :class:`LetterStore` reads one bus's dead-letter topics without taking anything
(``list``), and makes the bus that ``replay`` consumes them through. Both see a
topic as the consumer group :data:`REPLAY_GROUP` sees it. Every supported backend
creates a new group at the *start* of the topic, so letters written before the
first ``list`` or ``replay`` are there, as long as the broker retains them:

- Redis Streams: a group is created at entry 0; nothing is removed by acking, only
  by ``maxLenApprox``/``streamTTL`` trimming. Exact: a replayed letter is acked on its
  own, so a failure leaves no gap.
- Kafka: the group starts at the oldest offset (forced, whatever ``initialOffset``
  says); letters live as long as the topic's retention. The group's place is an
  offset per partition, so replay stops at the first failure (see ``positional``).
- NATS JetStream: the group is a durable consumer with deliver policy ``all``
  (forced); letters live as long as the stream's limits. Its place is the ack floor,
  so replay stops at the first failure as on Kafka.

Not supported, with an error that says what to do instead: the embedded in-memory
bus (it lives and dies inside ``fnevents run``), MQTT (reading a message takes it,
and Mosquitto queues only for sessions that subscribed before the message came) and
the Dapr sidecar (its API can only consume).
"""

from __future__ import annotations

import abc
import importlib
from typing import Any, ClassVar

from events.app.plans import BusPlan
from events.brokers.registry import settings_for
from events.bus.contract import EventBus, Message
from events.bus.letters import Letter
from events.deadletters import REPLAY_GROUP
from events.deadletters.errors import DeadLettersUnavailable

__all__ = ["REPLAY_GROUP", "LetterStore", "open_store"]

_STORES = {
    "pubsub.redis": "events.brokers.redis.letters:RedisLetters",
    "pubsub.kafka": "events.brokers.kafka.letters:KafkaLetters",
    "pubsub.jetstream": "events.brokers.jetstream.letters:JetStreamLetters",
}
_INSTEAD = (
    "keep dead letters where another process can read them: run the bus on Redis, "
    "Kafka or NATS JetStream (e.g. --components components/redis.yaml), or give the "
    "subscriber a deadLetterSink"
)
_UNSUPPORTED = {
    "pubsub.in-memory": "is the embedded in-memory bus: it lives inside `fnevents run`, "
    "so its dead letters are gone when that process ends and no other process can read them",
    "pubsub.mqtt3": "is on MQTT: reading an MQTT message takes it off the broker, so letters "
    "cannot be listed without consuming them, and Mosquitto keeps a message only for sessions "
    "that subscribed before it was published (a retained message is just the last one)",
    "dapr": "goes through a Dapr sidecar, whose API can only consume a topic, not look at it; "
    "point --components at the broker's own Component to read it directly",
}


class LetterStore(abc.ABC):
    """Dead letters of one bus. Create with :func:`open_store`; ``close`` when done."""

    #: The group's place on a topic is a position (Kafka offsets, the JetStream ack floor),
    #: not a set of acked letters: a letter acked after an unacked one would still be read
    #: again, so replay stops at the first letter it cannot deliver.
    positional: ClassVar[bool] = False

    def __init__(self, plan: BusPlan, settings: Any) -> None:
        self.plan = plan
        self.settings = settings
        self.pubsub_name = plan.component.name if plan.component is not None else "eventbus"

    @abc.abstractmethod
    async def browse(self, topic: str, limit: int | None = None) -> list[Letter]:
        """The letters on ``topic`` that REPLAY_GROUP has not acked, oldest first, at most
        ``limit``. Takes nothing: the same letters are there afterwards."""

    @abc.abstractmethod
    def replay_bus(self) -> EventBus:
        """A bus (not started) whose new groups start at the beginning of a topic."""

    async def release(self, messages: list[Message]) -> None:
        """Give back messages replay took and did not ack, so the next replay gets them
        at once. By default closing the subscription does that."""
        del messages

    async def close(self) -> None:
        """Release connections; idempotent."""
        return None


def open_store(plan: BusPlan) -> LetterStore:
    """The store for ``plan``'s backend; DeadLettersUnavailable explains what cannot be."""
    why = _UNSUPPORTED.get(plan.backend)
    if why is not None:
        raise DeadLettersUnavailable(
            f"cannot read dead letters: the EventBus ({plan.via}) {why}; {_INSTEAD}"
        )
    target = _STORES.get(plan.backend)
    if target is None:
        raise DeadLettersUnavailable(
            f"cannot read dead letters on {plan.backend} ({plan.via}); {_INSTEAD}"
        )
    settings = settings_for(plan)
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(plan, settings)
