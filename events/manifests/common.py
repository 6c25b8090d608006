"""Pieces shared by every manifest kind: metadata, references, sinks, durations."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from events.durations import FORMAT_HINT, OutOfRange, parse_duration
from events.errors import quote

DEFAULT_NAMESPACE = "default"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except OutOfRange:  # it reads as a duration, but a ridiculous one: say so
        raise
    except ValueError:
        raise ValueError(f"expected {FORMAT_HINT}, got {quote(value)}") from None


#: Seconds, written by users as '5s', '1m30s', 'PT5S' or a number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]


class Model(BaseModel):
    """Strict by default: an unknown field is a typo until proven otherwise.

    Validators are built on first use (``defer_build``), so a start pays only for the
    kinds its manifests hold."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)


class Metadata(BaseModel):
    """Kubernetes object metadata. Only name and namespace matter here; the rest is kept."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    name: str
    namespace: str = DEFAULT_NAMESPACE
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "namespace")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not _DNS_LABEL.fullmatch(value) or len(value) > 253:
            raise ValueError(
                f"{quote(value)} is not a valid Kubernetes name: use lower-case letters, "
                "digits, '-' and '.', starting and ending with a letter or digit"
            )
        return value


class Reference(Model):
    """A reference to another object, as OpenFunction's ``sink.ref`` writes it."""

    apiVersion: str
    kind: str
    name: str
    namespace: str | None = None


class SinkSpec(Model):
    """Where to POST events: ``uri`` wins over ``ref`` when both are given."""

    uri: str | None = None
    ref: Reference | None = None

    @field_validator("uri")
    @classmethod
    def _http_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {quote(value)}")
        return value

    @model_validator(mode="after")
    def _uri_or_ref(self) -> SinkSpec:
        if self.uri is None and self.ref is None:
            raise ValueError("a sink needs 'uri' or 'ref'")
        return self

    def describe(self) -> str:
        if self.uri:
            return self.uri
        assert self.ref is not None
        return f"{self.ref.kind}/{self.ref.name}"


class SecretKeyRef(Model):
    """A Kubernetes Secret key. Resolved locally from a Secret manifest or the environment."""

    name: str
    key: str
