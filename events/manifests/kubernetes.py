"""Kubernetes kinds fnevents reads locally: ``v1/Secret``, for ``secretKeyRef``."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import Field, field_validator

from events.errors import quote
from events.manifests.common import Metadata, Model


class Secret(Model):
    """A Secret's ``data`` values are base64, as Kubernetes requires (checked at load);
    they may hold any bytes, but only UTF-8 text can be used (checked when one is)."""

    model_config = Model.model_config | {"extra": "ignore"}

    apiVersion: Literal["v1"]
    kind: Literal["Secret"]
    metadata: Metadata
    data: dict[str, str] = Field(default_factory=dict, description="base64-encoded values")
    stringData: dict[str, str] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _base64(cls, data: dict[str, str]) -> dict[str, str]:
        for key, value in data.items():
            try:
                _decode(value)
            except (binascii.Error, ValueError):
                raise ValueError(
                    f"data {quote(key)}: {quote(value)} is not base64 (Kubernetes keeps "
                    "'data' values base64-encoded, e.g. 'c2VjcmV0' for 'secret'); put plain "
                    "text under 'stringData' instead"
                ) from None
        return data

    def value(self, key: str) -> str | None:
        """The text under ``key``; ValueError when its bytes are not UTF-8 text."""
        if key in self.stringData:
            return self.stringData[key]
        if key in self.data:
            decoded = _decode(self.data[key])
            try:
                return decoded.decode()
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"data {quote(key)} is not UTF-8 text once decoded from base64 (byte "
                    f"{exc.start}: {exc.reason}); fnevents passes secrets on as text"
                ) from None
        return None


def _decode(value: str) -> bytes:
    """Kubernetes' reading of base64 (Go's StdEncoding): padded, line breaks ignored."""
    return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
