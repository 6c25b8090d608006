"""The backlog query: an optional capability of an :class:`~events.bus.contract.EventBus`.

A bus that can say how much waits on the broker for a consumer group implements
:class:`Backlog` (one method; nothing in the core contract changes). The stall report
(:mod:`events.bus.stall`) needs it to tell "idle" from "stuck", and the runtime exports
it as the gauge ``fnevents_backlog{topic,group}``. What each broker counts:

- Redis Streams: the group's ``lag`` (entries not yet read; Redis 7) plus ``pending``
  (read, not acked) from XINFO GROUPS; Redis 6.2 has no ``lag``, so there the unread
  part counts as 1 when any entry is unread (a lower bound);
- Kafka: per partition of the topic, the end offset minus the group's committed one
  (the earliest offset where it has committed nothing);
- NATS JetStream: the durable consumer's ``num_pending`` plus ``num_ack_pending``;
- the in-memory bus: the group's events queued, handed out or waiting out a nack;
- MQTT and the Dapr sidecar: unknown (neither protocol says what a broker holds for a
  group), so those buses do not implement it, and no stall is reported for them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from events.bus.contract import EventBus


@runtime_checkable
class Backlog(Protocol):
    """What waits on the broker for ``group`` on ``topic``."""

    async def backlog(self, topic: str, group: str) -> int | None:
        """Events not yet delivered to the group plus those delivered and not yet acked;
        None when the bus cannot tell (it has not seen the group yet). Raises
        ``BusError`` when the broker cannot be asked."""
        ...


def backlog_of(bus: EventBus) -> Backlog | None:
    """``bus`` itself if it can answer backlog queries, else None."""
    return bus if isinstance(bus, Backlog) else None
