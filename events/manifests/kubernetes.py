"""Kubernetes kinds fnevents reads locally: ``v1/Secret``, for ``secretKeyRef``."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field

from events.manifests.common import Metadata, Model


class Secret(Model):
    model_config = Model.model_config | {"extra": "ignore"}

    apiVersion: Literal["v1"]
    kind: Literal["Secret"]
    metadata: Metadata
    data: dict[str, str] = Field(default_factory=dict, description="base64-encoded values")
    stringData: dict[str, str] = Field(default_factory=dict)

    def value(self, key: str) -> str | None:
        if key in self.stringData:
            return self.stringData[key]
        if key in self.data:
            return base64.b64decode(self.data[key]).decode()
        return None
