"""The connection to Kafka: aiokafka's options, the producer, and its errors as BusError.

:class:`KafkaClient` owns the one producer of a bus or of an output binding (both
start, keep and stop it the same way). The consumer of a group member is created by
:func:`events.brokers.kafka.member.join_group` from :func:`consumer_options`.
aiokafka's errors are said as :class:`BusError`, retriable when the broker is
unreachable (:func:`bus_error`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

from events.brokers.kafka.batcher import ProduceBatcher
from events.brokers.kafka.settings import KafkaSettings, broker_list
from events.errors import BusError

#: What the client raises for a broker it cannot reach (or that stopped answering).
UNREACHABLE = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    OSError,
)
#: Everything a Kafka call may raise that the bus reports as a BusError.
CLIENT_ERRORS = (KafkaError, OSError)
#: Producer batch size: large enough that a burst of concurrent publishes goes out in
#: a few requests (aiokafka's default of 16 KiB holds only ~15 events of 1 KB).
MAX_BATCH_BYTES = 512 * 1024
#: The consumer's per-partition fetch size, at least; a record up to maxMessageBytes
#: must fit in one fetch.
MIN_FETCH_BYTES = 1024 * 1024


def is_retriable(exc: BaseException) -> bool:
    """Whether a client error may pass by itself: the broker is unreachable, or says so."""
    return isinstance(exc, UNREACHABLE) or bool(getattr(exc, "retriable", False))


def bus_error(exc: BaseException, doing: str) -> BusError:
    """``doing`` says what failed, e.g. ``cannot reach Kafka at host:9092``."""
    return BusError(f"{doing}: {exc}", retriable=is_retriable(exc))


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by aiokafka's producer and consumer."""
    options: dict[str, Any] = {
        "bootstrap_servers": broker_list(settings.brokers),
        "client_id": settings.clientID,
        "retry_backoff_ms": int(settings.consumeRetryInterval * 1000),
    }
    tls = settings.authType != "none" and not settings.disableTls
    if settings.authType == "password":
        options.update(
            security_protocol="SASL_SSL" if tls else "SASL_PLAINTEXT",
            sasl_mechanism=settings.saslMechanism,
            sasl_plain_username=settings.saslUsername,
            sasl_plain_password=settings.saslPassword,
        )
    elif tls:
        options["security_protocol"] = "SSL"
    if tls:
        options["ssl_context"] = ssl_context(settings)
    return options


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=settings.caCert or None)
    if settings.skipVerify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.clientCert and settings.clientKey:
        # ssl loads a key pair only from files: write them privately, load, delete
        with tempfile.TemporaryDirectory(prefix="fnevents-kafka-") as folder:
            cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
            for path, pem in ((cert, settings.clientCert), (key, settings.clientKey)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as file:
                    file.write(pem)
            context.load_cert_chain(cert, key)
    return context


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
    """The Kafka consumer group of fnevents' (group, topic): see ``consumerGroup``."""
    prefix = f"{settings.consumerGroup}." if settings.consumerGroup else ""
    return f"{prefix}{group}.{topic}"


class KafkaClient:
    """One aiokafka producer (``acks=all``, see :func:`producer_options`).

    ``start`` connects and is idempotent; a start that fails stops the half-started
    producer and lets the client error through, for the caller to say in its own
    terms. ``producer`` is None until started and again once ``close`` began, so a
    caller can tell "not started" from "closed" by its own flag. ``batcher`` sends the
    records of concurrent callers together (:mod:`events.brokers.kafka.batcher`); it is
    set and cleared with ``producer``.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        #: The bootstrap brokers as ``host:port,host:port``, for messages.
        self.brokers = ",".join(broker_list(settings.brokers))
        self.producer: AIOKafkaProducer | None = None
        self.batcher: ProduceBatcher | None = None

    async def start(self) -> None:
        if self.producer is not None:
            return
        producer = AIOKafkaProducer(**producer_options(self.settings))
        try:
            await producer.start()
        except (asyncio.CancelledError, *CLIENT_ERRORS):
            await producer.stop()
            raise
        self.producer = producer
        self.batcher = ProduceBatcher(producer)

    async def close(self) -> None:
        """Stop the producer, which first sends what is queued; unbounded, so a caller that
        must not hang on an outage bounds it."""
        producer, self.producer = self.producer, None
        batcher, self.batcher = self.batcher, None
        if batcher is not None:
            await batcher.drain()  # records queued by publishers still waiting go out first
        if producer is not None:
            await producer.stop()


class GroupProbes:
    """The backlog query: per Kafka consumer group, a consumer that never joins it (it
    subscribes to nothing, so the group does not rebalance) and reads the group's
    committed offsets and the topic's end offsets. Made on first use, one per group."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._probes: dict[str, AIOKafkaConsumer] = {}

    async def backlog(self, group_id: str, topic: str) -> int | None:
        """Per partition of ``topic``, its end offset minus the group's committed offset
        (its first offset where the group has committed nothing); None for a topic the
        broker does not know."""
        probe = await self._probe(group_id)
        partitions = probe.partitions_for_topic(topic)
        if not partitions:
            await probe.topics()  # (a metadata refresh)
            partitions = probe.partitions_for_topic(topic)
            if not partitions:
                return None
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await probe.end_offsets(tps)
        starts: dict[TopicPartition, int] | None = None
        total = 0
        for tp in tps:
            committed = await probe.committed(tp)
            if committed is None:
                starts = starts or await probe.beginning_offsets(tps)
                committed = starts[tp]
            total += max(0, ends[tp] - committed)
        return total

    async def _probe(self, group_id: str) -> AIOKafkaConsumer:
        probe = self._probes.get(group_id)
        if probe is None:
            probe = AIOKafkaConsumer(
                **client_options(self._settings), group_id=group_id, enable_auto_commit=False
            )
            try:
                await probe.start()
            except (asyncio.CancelledError, *CLIENT_ERRORS):
                await probe.stop()
                raise
            self._probes[group_id] = probe
        return probe

    async def close(self) -> None:
        probes, self._probes = list(self._probes.values()), {}
        for probe in probes:
            await probe.stop()
