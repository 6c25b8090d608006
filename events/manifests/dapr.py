"""The Dapr ``Component`` kind (``dapr.io/v1alpha1``), as Dapr reads it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from events.manifests.common import Metadata, Model, SecretKeyRef


class MetadataItem(Model):
    """One ``spec.metadata`` entry: a literal ``value`` or a ``secretKeyRef``."""

    name: str
    value: Any = None
    secretKeyRef: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _value_or_secret(self) -> MetadataItem:
        if self.value is not None and self.secretKeyRef is not None:
            raise ValueError(f"metadata '{self.name}' sets both 'value' and 'secretKeyRef'")
        return self


class ComponentAuth(Model):
    secretStore: str


class ComponentSpec(Model):
    type: str
    version: str = "v1"
    metadata: list[MetadataItem] = Field(default_factory=list)
    initTimeout: str | None = None
    ignoreErrors: bool = False


class Component(Model):
    model_config = Model.model_config | {"extra": "ignore"}

    apiVersion: Literal["dapr.io/v1alpha1"]
    kind: Literal["Component"]
    metadata: Metadata
    spec: ComponentSpec
    scopes: list[str] = Field(default_factory=list)
    auth: ComponentAuth | None = None

    @property
    def is_pubsub(self) -> bool:
        return self.spec.type.startswith("pubsub.")
