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
managed brokers refuse ``InitProducerId``). Concurrent publishes are batched by
the client (one request carries every record queued while the previous one was
in flight), so callers that publish concurrently get batched throughput while
each still returns only once the broker holds its event.

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
aiokafka itself reconnects and rejoins the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from events.bindings.kafka import STRUCTURED_CONTENT_TYPE, partitionkey_mapper
from events.brokers.kafka.client import CLIENT_ERRORS, bus_error
from events.brokers.kafka.member import STOP_TIMEOUT, KafkaSubscription
from events.brokers.kafka.settings import KafkaSettings, broker_list, client_options
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

__all__ = ["KafkaBus", "KafkaSettings"]

_HEADERS = [("content-type", STRUCTURED_CONTENT_TYPE.encode("ascii"))]
#: Producer batch size: large enough that a burst of concurrent publishes goes out in
#: a few requests (aiokafka's default of 16 KiB holds only ~15 events of 1 KB).
MAX_BATCH_BYTES = 512 * 1024
#: The consumer's per-partition fetch size, at least; a record up to maxMessageBytes
#: must fit in one fetch.
MIN_FETCH_BYTES = 1024 * 1024


def producer_options(settings: KafkaSettings) -> dict:
    """The producer's options (the benchmark's raw reference uses the same)."""
    return {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": False,
        "max_request_size": settings.maxMessageBytes,
        "max_batch_size": MAX_BATCH_BYTES,
    }


def consumer_options(settings: KafkaSettings, group_id: str) -> dict:
    """A group member's options; offsets are committed by us, never automatically."""
    return {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest" if settings.initialOffset == "oldest" else "latest",
        "session_timeout_ms": int(settings.sessionTimeout * 1000),
        "heartbeat_interval_ms": int(settings.heartbeatInterval * 1000),
        "max_partition_fetch_bytes": max(MIN_FETCH_BYTES, settings.maxMessageBytes),
        "fetch_max_wait_ms": int(settings.fetchMaxWait * 1000),
    }


def group_id(settings: KafkaSettings, group: str, topic: str) -> str:
    prefix = f"{settings.consumerGroup}." if settings.consumerGroup else ""
    return f"{prefix}{group}.{topic}"


async def join_group(
    settings: KafkaSettings,
    name: str,
    topic: str,
    pubsub_name: str,
    decode: Callable[[Any], Any] | None = None,
) -> KafkaSubscription:
    """Join Kafka consumer group ``name`` reading ``topic``; return once partitions are
    assigned. Raises BusError (retriable if the broker is unreachable) naming the group
    and the brokers. ``decode`` is passed to :class:`KafkaSubscription`."""
    where = f"group {name} on Kafka at {','.join(broker_list(settings.brokers))}"
    consumer = AIOKafkaConsumer(**consumer_options(settings, name))
    subscription = KafkaSubscription(
        consumer,
        topic,
        pubsub_name,
        commit_interval=settings.commitInterval,
        max_pending=settings.maxPending,
        commit_on_assign=settings.initialOffset == "newest",
        where=where,
        decode=decode,
    )
    consumer.subscribe([topic], listener=subscription.rebalance)
    try:
        await consumer.start()
        await subscription.open()
    except BaseException as exc:
        await subscription.close(drain_timeout=0)
        if isinstance(exc, CLIENT_ERRORS):
            raise bus_error(exc, f"cannot join {where}") from exc
        raise
    return subscription


class KafkaBus(EventBus):
    """Dapr's ``pubsub.kafka``. See the module docstring for the wire format and delivery."""

    component_type: ClassVar[str] = "pubsub.kafka"

    def __init__(self, settings: KafkaSettings, pubsub_name: str = "eventbus") -> None:
        self._settings = settings
        self._pubsub_name = pubsub_name
        self._brokers = ",".join(broker_list(settings.brokers))
        self._producer: AIOKafkaProducer | None = None
        self._subscriptions: set[KafkaSubscription] = set()
        self._closed = False

    def describe(self) -> str:
        return f"Kafka at {self._brokers}"

    async def start(self) -> None:
        if self._closed:
            raise BusClosed(f"the bus on Kafka at {self._brokers} is closed")
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**producer_options(self._settings))
        try:
            await producer.start()
        except CLIENT_ERRORS as exc:
            await producer.stop()
            raise bus_error(exc, f"cannot reach Kafka at {self._brokers}") from exc
        self._producer = producer

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        producer = self._producer
        if producer is None:
            if self._closed:
                raise BusClosed(f"the bus on Kafka at {self._brokers} is closed; cannot publish")
            raise BusError("KafkaBus.publish() before start()")
        value = envelope.encode(event, topic, self._pubsub_name)
        record_key = key.encode("utf-8") if key else partitionkey_mapper(event)
        try:
            delivered = await producer.send(topic, value, key=record_key, headers=_HEADERS)
            await delivered
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

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        producer, self._producer = self._producer, None
        if producer is not None:
            # stop() flushes what is queued; bounded so an outage cannot hang shutdown
            with contextlib.suppress(TimeoutError, *CLIENT_ERRORS):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await producer.stop()
