"""The ``bindings.kafka`` output: ``context.send`` to a Kafka topic through a Dapr Component.

Settings are Dapr's Kafka binding metadata names: ``brokers``, ``publishTopic``
and the same connection and auth fields as the ``pubsub.kafka`` bus
(:class:`~events.bus.kafka_settings.KafkaSettings`: ``authType`` none, password,
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

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import Field, ValidationError, field_validator, model_validator

from events.bindings.kafka import to_binary
from events.bus.kafka import producer_options
from events.bus.kafka_errors import CLIENT_ERRORS, UNREACHABLE
from events.bus.kafka_settings import KafkaSettings, broker_list
from events.cloudevent import CloudEvent
from events.errors import FnEventsError
from events.manifests.loader import Loaded

BINDING_TYPE = "bindings.kafka"


class OutputError(FnEventsError, ConnectionError):
    """An output could not take an event; ``retriable`` when its broker is unreachable."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        self.retriable = retriable
        super().__init__(message)


class KafkaBindingSettings(KafkaSettings):
    publishTopic: str | None = Field(
        default=None, description="the topic sends go to, unless the output names one"
    )
    topics: str | None = Field(default=None, description="input side; not used by outputs")
    direction: str | None = Field(default=None, description="input, output or both")
    authRequired: bool | None = Field(
        default=None, description="deprecated in Dapr: true means authType password"
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_auth(cls, data: Any) -> Any:
        legacy = isinstance(data, dict) and "authType" not in data
        if legacy and str(data.get("authRequired", "")).lower() == "true":
            return {**data, "authType": "password"}
        return data

    @field_validator("direction")
    @classmethod
    def _output_direction(cls, value: str | None) -> str | None:
        if value is not None and "output" not in {d.strip() for d in value.split(",")}:
            raise ValueError(f"is {value!r}; an output binding needs 'output' in it")
        return value


def binding_settings(component: Loaded, metadata: dict[str, str]) -> KafkaBindingSettings:
    """Validate a Component's resolved metadata; a ManifestError names the Component's field."""
    try:
        return KafkaBindingSettings.model_validate(metadata)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(p) for p in error["loc"]) or "?"
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(KafkaBindingSettings.model_fields))
            problem = f"unknown metadata '{name}' for {BINDING_TYPE}; known names: {known}"
        elif error["type"] == "missing":
            problem = f"metadata '{name}' is required for {BINDING_TYPE}"
        else:
            problem = f"metadata '{name}': {error['msg'].removeprefix('Value error, ')}"
        raise component.error(problem, "spec.metadata") from None


class KafkaBinding:
    """One Kafka producer for one ``bindings.kafka`` Component.

    ``start`` connects (an unreachable broker is a retriable OutputError);
    ``send`` is safe to call concurrently; ``close`` is idempotent.
    """

    def __init__(self, name: str, settings: KafkaBindingSettings) -> None:
        self.name = name
        self.settings = settings
        self._brokers = ",".join(broker_list(settings.brokers))
        self._producer: AIOKafkaProducer | None = None

    def describe(self) -> str:
        return f"{BINDING_TYPE} {self.name} at {self._brokers}"

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**producer_options(self.settings))
        try:
            await producer.start()
        except CLIENT_ERRORS as exc:
            await producer.stop()
            raise self._error(exc, "cannot reach Kafka") from exc
        except asyncio.CancelledError:
            await producer.stop()
            raise
        self._producer = producer

    async def send(self, event: CloudEvent, topic: str | None = None) -> None:
        """Produce ``event`` to ``topic`` (else ``publishTopic``); return once it is on Kafka."""
        target = topic or self.settings.publishTopic
        if self._producer is None:
            raise OutputError(f"{self.describe()} is not started or closed", retriable=False)
        assert target, "checked when the manifests loaded"
        key, value, headers = to_binary(event)
        try:
            await self._producer.send_and_wait(target, value, key=key, headers=headers)
        except CLIENT_ERRORS as exc:
            raise self._error(exc, f"cannot produce to topic {target}") from exc

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _error(self, exc: BaseException, doing: str) -> OutputError:
        retriable = isinstance(exc, UNREACHABLE) or bool(getattr(exc, "retriable", False))
        return OutputError(f"{self.describe()}: {doing}: {exc!r}", retriable=retriable)


__all__ = ["BINDING_TYPE", "KafkaBinding", "KafkaBindingSettings", "OutputError"]
