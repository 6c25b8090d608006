"""Where dead letters can be read from another process, and how.

A :class:`~events.bus.letters.LetterStore` reads one bus's dead-letter topics without
taking anything (``list``), and makes the bus that ``replay`` consumes them through.
Both see a topic as the consumer group ``REPLAY_GROUP`` sees it. Every supported
backend creates a new group at the *start* of the topic, so letters written before
the first ``list`` or ``replay`` are there, as long as the broker retains them:

- Redis Streams: a group is created at entry 0; nothing is removed by acking, only
  by ``maxLenApprox``/``streamTTL`` trimming. Exact: a replayed letter is acked on its
  own, so a failure leaves no gap.
- Kafka: the group starts at the oldest offset (forced, whatever ``initialOffset``
  says); letters live as long as the topic's retention. The group's place is an
  offset per partition, so replay stops at the first failure (see ``positional``).
- NATS JetStream: the group is a durable consumer with deliver policy ``all``
  (forced); letters live as long as the stream's limits. Its place is the ack floor,
  so replay stops at the first failure as on Kafka.

Which brokers have a store, and why the others cannot, is declared by each broker's
descriptor (``letters`` or ``no_letters``).
"""

from __future__ import annotations

from events.brokers.registry import bus_settings, part_for
from events.bus.letters import LetterStore
from events.bus.plan import BusPlan
from events.deadletters.errors import DeadLettersUnavailable

_INSTEAD = (
    "keep dead letters where another process can read them: run the bus on Redis, "
    "Kafka or NATS JetStream (e.g. --components components/redis.yaml), or give the "
    "subscriber a deadLetterSink"
)


def open_store(plan: BusPlan) -> LetterStore:
    """The store for ``plan``'s backend; DeadLettersUnavailable explains what cannot be."""
    broker, _ = part_for(plan.backend)
    if broker.letters is None:
        raise DeadLettersUnavailable(
            f"cannot read dead letters: the EventBus ({plan.via}) {broker.no_letters}; {_INSTEAD}"
        )
    return broker.load(broker.letters)(bus_settings(plan), plan.pubsub_name)
