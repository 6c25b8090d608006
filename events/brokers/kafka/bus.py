"""``pubsub.kafka``: the bus on Kafka (or any Kafka-compatible broker), with aiokafka.

Wire format, as Dapr's Kafka component: the record value is Dapr's envelope
(structured CloudEvents JSON with ``topic`` and ``pubsubname``), the record key
is the caller's key or else the event's ``partitionkey``, so events with one key
land in one partition and stay in order. We also set ``content-type:
application/cloudevents+json``, which makes the record a CloudEvents Kafka
structured-mode record for non-Dapr consumers (Dapr passes headers through as
metadata). Reading accepts Dapr's envelope, any structured CloudEvent, CloudEvents
binary mode (``ce_`` headers) and plain payloads (wrapped as Dapr wraps them,
with the id ``<topic>/<partition>/<offset>``).

Publishing: ``acks=all``, without the idempotent producer (Tansu and some
managed brokers refuse ``InitProducerId``). Concurrent publishes are sent
together, one record batch per partition
(:class:`~events.brokers.kafka.batcher.ProduceBatcher`: everything queued while the
previous request was in flight), so callers that publish concurrently get batched
throughput while each still returns only once the broker holds its event.

Subscribing: one Kafka consumer group per (group, topic), named
``[<consumerGroup>.]<group>.<topic>``; ``subscribe()`` returns once the group
has assigned this member its partitions. Delivery, acks, nacks and commits are
described in :mod:`events.brokers.kafka.member`: at least once, a nack never
stalls its partition, per-key order holds for first deliveries (a redelivery
after a nack arrives after later records), and ``Message.attempt`` counts only
the nacks seen by this member (Kafka keeps no delivery count: a member that
takes over a partition starts again at 1).

A broker that cannot be reached is reported as ``BusError(retriable=True)``
from ``start``, ``publish``, ``subscribe`` or a subscription's ``__anext__``;
retrying is the core's job (:mod:`events.bus.resilient`). Within a connection,
aiokafka itself reconnects and rejoins the group: its producer and consumers have no
state in which they stay closed short of our own ``stop()``, so unlike nats-py and
paho they need no :class:`events.bus.live.LiveClient`.

Backlog (the optional :class:`events.bus.backlog.Backlog` capability): per partition,
the end offset minus the group's committed offset, read by a consumer of the group
that never joins it (:class:`~events.brokers.kafka.client.GroupProbes`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from aiokafka.errors import MessageSizeTooLargeError

from events.bindings.kafka import STRUCTURED_CONTENT_TYPE, partitionkey_mapper
from events.brokers.kafka.client import (
    CLIENT_ERRORS,
    GroupProbes,
    KafkaClient,
    bus_error,
    group_id,
)
from events.brokers.kafka.member import STOP_TIMEOUT, KafkaMember, join_group
from events.brokers.kafka.settings import KafkaSettings
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

__all__ = ["KafkaBus", "KafkaSettings"]

_HEADERS = [("content-type", STRUCTURED_CONTENT_TYPE.encode("ascii"))]


class KafkaBus(EventBus):
    """Dapr's ``pubsub.kafka``. See the module docstring for the wire format and delivery."""

    component_type: ClassVar[str] = "pubsub.kafka"

    def __init__(self, settings: KafkaSettings, pubsub_name: str = "eventbus") -> None:
        self._settings = settings
        self._pubsub_name = pubsub_name
        self._client = KafkaClient(settings)
        self._brokers = self._client.brokers
        self._subscriptions: set[KafkaMember] = set()
        self._probes = GroupProbes(settings)
        self._closed = False

    def describe(self) -> str:
        return f"Kafka at {self._brokers}"

    async def start(self) -> None:
        if self._closed:
            raise BusClosed(f"the bus on Kafka at {self._brokers} is closed")
        try:
            await self._client.start()
        except CLIENT_ERRORS as exc:
            raise bus_error(exc, f"cannot reach Kafka at {self._brokers}") from exc

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        batcher = self._client.batcher
        if batcher is None:
            if self._closed:
                raise BusClosed(f"the bus on Kafka at {self._brokers} is closed; cannot publish")
            raise BusError("KafkaBus.publish() before start()")
        value = envelope.encode(event, topic, self._pubsub_name)
        record_key = key.encode("utf-8") if key else partitionkey_mapper(event)
        try:
            await batcher.send(topic, value, record_key, _HEADERS)
        except MessageSizeTooLargeError as exc:
            raise BusError(
                f"event {event.id} is {len(value):,} bytes on the wire, over maxMessageBytes "
                f"({self._settings.maxMessageBytes:,}) or the broker's limit: {exc}"
            ) from exc
        except CLIENT_ERRORS as exc:
            if self._closed:
                msg = f"the bus on Kafka at {self._brokers} closed while publishing"
                raise BusClosed(msg) from exc
            raise bus_error(exc, f"cannot publish to {topic} on Kafka at {self._brokers}") from exc

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed(f"the bus on Kafka at {self._brokers} is closed; cannot subscribe")
        name = group_id(self._settings, group, topic)
        subscription = await join_group(self._settings, name, topic, self._pubsub_name)
        self._subscriptions.add(subscription)
        subscription.on_close = self._subscriptions.discard
        return subscription

    async def backlog(self, topic: str, group: str) -> int | None:
        """Per partition, the end offset minus the group's committed offset, summed: what
        the group has not read plus what it read and has not committed (acks are
        committed every ``commitInterval``)."""
        if self._closed:
            raise BusClosed(f"the bus on Kafka at {self._brokers} is closed")
        try:
            return await self._probes.backlog(group_id(self._settings, group, topic), topic)
        except CLIENT_ERRORS as exc:
            raise bus_error(exc, f"cannot read the backlog of {topic} on Kafka") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(TimeoutError, *CLIENT_ERRORS):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._probes.close()
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        # stop() flushes what is queued; bounded so an outage cannot hang shutdown
        with contextlib.suppress(TimeoutError, *CLIENT_ERRORS):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._client.close()
