"""The settings of a ``bindings.kafka`` output Component, checked when manifests load.

Kept apart from :mod:`events.brokers.kafka.binding` so that loading manifests does
not import the Kafka client (about 70 ms of every ``fnevents`` start).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from events.brokers.kafka.settings import KafkaSettings

BINDING_TYPE = "bindings.kafka"


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
