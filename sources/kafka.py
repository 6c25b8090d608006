"""The ``kafka`` source: records from a Kafka topic as CloudEvents on the bus, at least once.

Settings are OpenFunction's names, plus fnevents extensions:

* ``brokers``: comma-separated ``host:port`` list; ``topic``: one topic (to read
  several, declare one event per topic);
* ``authRequired``: SASL with ``saslUsername``, ``saslPassword`` and
  ``saslMechanism`` (``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``);
* ``tls`` (extension): connect with TLS, the brokers verified with ``caCert``
  (PEM) or the system's CAs, and a client certificate from ``clientCert`` and
  ``clientKey`` when both are given. TLS is off unless asked for, with or without
  SASL (``authRequired`` without ``tls`` is warned about at startup), and giving a
  certificate without ``tls: true`` is a load error;
* ``maxMessageBytes``: the largest record expected; a fetch asks for at least
  this much (1 MiB at the least), so such a record arrives in one fetch.
  OpenFunction passes it to Dapr, which uses it only for producing;
* ``consumerGroup`` (extension): the Kafka consumer group, by default
  ``{namespace}-esc-kafka-{event}`` as OpenFunction names it. That name has no
  EventSource in it: two EventSources of one namespace with an event of the same
  name share a group, and so split the records between them. Replicas running
  the same manifest share the group on purpose: each partition is read by one;
* ``initialOffset`` (extension): where a group without committed offsets starts,
  ``newest`` (the default, as Dapr's binding) or ``oldest``. With ``newest`` the
  end of each partition is committed when the group first gets it, so records
  produced after that are never skipped, whichever member reads them;
* ``scaleOption``: KEDA hints for the Helm chart; not used at runtime.

The group's session timeout is ``SESSION_TIMEOUT`` (10 s, as Dapr's); a member
that dies is noticed after it, and its partitions move to the others.

Delivery: each record becomes an event by the normalization rules (see
:mod:`sources.kafka_records`: ``ce_`` headers or a structured value pass through,
anything else is wrapped with the id ``{topic}/{partition}/{offset}``). A
partition's records are emitted one at a time, in offset order; different
partitions are emitted concurrently. Offsets are committed only after
``outlet.emit`` (or ``outlet.reject``) returned, i.e. once the bus holds the
event, every second, up to the first record not yet done in each partition: a
crash replays at most that tail, with the same ids, and loses nothing. A record
that cannot become an event goes to the EventSource's dead letter with the
reason and its value, and is committed past; it never stops its partition.

The group member, its reading, backpressure, rebalancing and committing are the
``pubsub.kafka`` bus's own, used through :class:`events.brokers.kafka.source.KafkaReader`
with the source's normalization instead of the bus's wire format.

Failures: a broker that cannot be reached, or a group that is lost, ends ``run``
with a :class:`KafkaSourceError` (retriable) naming the brokers; an ``emit``
that fails ends it with that error. The runtime starts the source again with
backoff, and it resumes from the last committed offsets. While the client is
connected, aiokafka itself reconnects to a broker that restarts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError

from events.brokers.kafka.message import KafkaMessage
from events.brokers.kafka.settings import KafkaSettings, broker_list
from events.brokers.kafka.source import KafkaReader
from events.cloudevent import CloudEvent
from events.errors import BusError, FnEventsError
from sources.contract import Outlet, Source, SourceIdentity
from sources.kafka_records import record_id, to_event
from sources.normalize import Rejected

#: The consumer group's session timeout, in seconds (sarama's and so Dapr's default).
#: Tansu answers a JoinGroup only after half of it, so tests shorten it.
SESSION_TIMEOUT = 10.0


class KafkaSourceError(FnEventsError, ConnectionError):
    """Kafka could not be read; ``retriable`` when the brokers are unreachable for now."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        self.retriable = retriable
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot become an event: what goes to the dead letter."""

    raw: bytes
    reason: str
    id: str


class KafkaSource(Source):
    kind: ClassVar[str] = "kafka"

    def __init__(self, identity: SourceIdentity, settings: Any) -> None:
        super().__init__(identity, settings)
        self.topic = _topic(settings.topic)
        self.group = settings.consumerGroup or f"{identity.namespace}-esc-kafka-{identity.event}"
        self.client = client_settings(settings, self.group)
        self.brokers = ",".join(broker_list(settings.brokers))

    def describe(self) -> str:
        return (
            f"kafka {self.identity.label} from {self.brokers} topic {self.topic} group {self.group}"
        )

    def notices(self) -> list[str]:
        if self.settings.authRequired and not self.settings.tls:
            return ["authRequired without tls: the SASL password crosses the network in clear"]
        return []

    async def run(self, outlet: Outlet) -> None:
        """Read and emit until cancelled; see the module docstring for what is committed."""
        try:
            reader = await KafkaReader.join(self.client, self.group, self.topic, self._normalize)
        except BusError as exc:
            raise _lost(exc) from exc
        try:
            await self._pump(reader, outlet)
        finally:
            # what was emitted is committed now; the rest is read again by whoever
            # takes the partitions (this source once restarted, or another replica)
            await reader.close()

    async def _pump(self, reader: KafkaReader, outlet: Outlet) -> None:
        """Hand each partition's messages to its own lane; the first failure ends it all."""
        lanes: dict[int, asyncio.Queue[KafkaMessage]] = {}
        try:
            async with asyncio.TaskGroup() as group:
                try:
                    async for message in reader:
                        lane = lanes.get(message.partition)
                        if lane is None:
                            lane = lanes[message.partition] = asyncio.Queue()
                            group.create_task(_emit_in_order(lane, outlet))
                        lane.put_nowait(message)
                except BusError as exc:  # reading failed (a lane's errors are its outlet's)
                    raise _lost(exc) from exc
        except BaseExceptionGroup as failed:
            raise _first(failed) from None

    def _normalize(self, record: Any) -> CloudEvent | Rejection:
        """The member's decode: runs as each record is handed out."""
        try:
            return to_event(record, self.brokers)
        except Rejected as exc:
            reason = exc.reason
        except Exception as exc:  # noqa: BLE001 - one record must never stop its partition
            reason = f"could not be normalized ({type(exc).__name__}: {exc})"
        return Rejection(record.value or b"", reason, record_id(record))


async def _emit_in_order(lane: asyncio.Queue[KafkaMessage], outlet: Outlet) -> None:
    """One partition: emit (or reject) each record, then ack it so its offset can commit."""
    while True:
        message = await lane.get()
        outcome: Any = message.event
        if isinstance(outcome, Rejection):
            await outlet.reject(outcome.raw, outcome.reason, outcome.id)
        else:
            await outlet.emit(outcome)
        await message.ack()


def _first(failed: BaseExceptionGroup) -> BaseException:
    """The error that ended the lanes (the others are the cancellations it caused)."""
    errors = [e for e in failed.exceptions if not isinstance(e, asyncio.CancelledError)]
    found = errors[0] if errors else failed.exceptions[0]
    return _first(found) if isinstance(found, BaseExceptionGroup) else found


def _lost(exc: BusError) -> KafkaSourceError:
    return KafkaSourceError(str(exc), retriable=exc.retriable)


def _topic(topic: str | None) -> str:
    if not topic or not topic.strip():
        raise ValueError("topic: required: the Kafka topic to read")
    if "," in topic:
        raise ValueError(f"topic: one topic per event, got {topic!r}; declare one event per topic")
    return topic.strip()


def client_settings(spec: Any, group: str) -> KafkaSettings:
    """The bus's Kafka settings model from an EventSource's ``kafka`` fields; a clear
    ValueError (naming the field) for settings that do not fit together."""
    certificates = [n for n in ("caCert", "clientCert", "clientKey") if getattr(spec, n)]
    if certificates and not spec.tls:
        raise ValueError(f"{certificates[0]}: set 'tls: true' to connect with TLS")
    if bool(spec.clientCert) != bool(spec.clientKey):
        raise ValueError("clientCert: give both clientCert and clientKey, or neither")
    if spec.authRequired:
        for name in ("saslUsername", "saslPassword"):
            if not getattr(spec, name):
                raise ValueError(f"{name}: required when authRequired is true")
        auth = "password"
    elif spec.tls:
        auth = "mtls" if spec.clientCert else "certificate"
    else:
        auth = "none"
    session = getattr(spec, "sessionTimeout", None) or SESSION_TIMEOUT
    values: dict[str, Any] = {
        "brokers": spec.brokers,
        "clientID": group,
        "authType": auth,
        "saslUsername": spec.saslUsername,
        "saslPassword": spec.saslPassword,
        "saslMechanism": spec.saslMechanism,
        "disableTls": not spec.tls,
        "caCert": spec.caCert,
        "clientCert": spec.clientCert,
        "clientKey": spec.clientKey,
        "initialOffset": spec.initialOffset,
        "sessionTimeout": session,
        "heartbeatInterval": min(3.0, session / 3),
    }
    if spec.maxMessageBytes is not None:
        values["maxMessageBytes"] = max(spec.maxMessageBytes, 1024)
    try:
        return KafkaSettings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{field}: {error['msg'].removeprefix('Value error, ')}") from None
