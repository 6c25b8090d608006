"""The ``bindings.kafka`` output: ``context.send`` to a Kafka topic through a Dapr Component.

Settings (:class:`~events.brokers.kafka.settings.KafkaBindingSettings`) are Dapr's
Kafka binding metadata names: ``brokers``, ``publishTopic``
and the same connection and auth fields as the ``pubsub.kafka`` bus
(:class:`~events.brokers.kafka.settings.KafkaSettings`: ``authType`` none, password,
mtls or certificate; ``saslUsername``, ``saslPassword``, ``saslMechanism``,
``caCert``, ``clientCert``, ``clientKey``, ``disableTls``, ``skipVerify``, ...).
The input-side names ``topics`` and ``consumerGroup`` are accepted (the same
Component often serves both directions) and not used here. Dapr's deprecated
``authRequired: true`` means ``authType: password`` when ``authType`` is not set.

Each send is one CloudEvents Kafka **binary-mode** record (the data as the
value, attributes as ``ce_`` headers, key from ``partitionkey``), produced with
``acks=all``; ``send`` returns only once the broker holds the record, so the
function's input is acked (or its HTTP request answered) after the output is on
Kafka. One producer serves every function of a process that names the Component.
"""

from __future__ import annotations

from events.bindings.kafka import to_binary
from events.brokers.kafka.client import CLIENT_ERRORS, KafkaClient, is_retriable
from events.brokers.kafka.settings import BINDING_TYPE, KafkaBindingSettings
from events.cloudevent import CloudEvent
from events.errors import FnEventsError


class OutputError(FnEventsError, ConnectionError):
    """An output could not take an event; ``retriable`` when its broker is unreachable."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        self.retriable = retriable
        super().__init__(message)


class KafkaBinding:
    """One Kafka producer for one ``bindings.kafka`` Component.

    ``start`` connects (an unreachable broker is a retriable OutputError);
    ``send`` is safe to call concurrently; ``close`` is idempotent.
    """

    def __init__(self, name: str, settings: KafkaBindingSettings) -> None:
        self.name = name
        self.settings = settings
        self._client = KafkaClient(settings)

    def describe(self) -> str:
        return f"{BINDING_TYPE} {self.name} at {self._client.brokers}"

    async def start(self) -> None:
        try:
            await self._client.start()
        except CLIENT_ERRORS as exc:
            raise self._error(exc, "cannot reach Kafka") from exc

    async def send(self, event: CloudEvent, topic: str | None = None) -> None:
        """Produce ``event`` to ``topic`` (else ``publishTopic``); return once it is on Kafka."""
        target = topic or self.settings.publishTopic
        producer = self._client.producer
        if producer is None:
            raise OutputError(f"{self.describe()} is not started or closed", retriable=False)
        assert target, "checked when the manifests loaded"
        key, value, headers = to_binary(event)
        try:
            await producer.send_and_wait(target, value, key=key, headers=headers)
        except CLIENT_ERRORS as exc:
            raise self._error(exc, f"cannot produce to topic {target}") from exc

    async def close(self) -> None:
        await self._client.close()

    def _error(self, exc: BaseException, doing: str) -> OutputError:
        return OutputError(f"{self.describe()}: {doing}: {exc!r}", retriable=is_retriable(exc))


__all__ = ["KafkaBinding", "OutputError"]
