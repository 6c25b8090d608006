"""fnevents' extension fields: things OpenFunction lacks, in Knative's vocabulary."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from events.errors import quote
from events.manifests.common import Duration, Model

#: CloudEvents attribute names: lower-case letters and digits (CloudEvents 1.0, section 3.1.1).
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")


class DeliverySpec(Model):
    """How a subscriber's sink is retried before its event goes to the dead letter.

    The names and meanings are Knative's ``delivery`` spec: ``retry`` extra attempts
    after the first, waiting ``backoffDelay`` (linear: delay * n; exponential:
    delay * 2^(n-1)) between them, each attempt limited to ``timeout`` (0: no
    limit). ``format`` is the CloudEvents HTTP mode of the POST: ``binary`` (the
    default) or ``structured`` (Knative calls it ``json``; both are accepted).
    """

    retry: int = Field(default=3, ge=0, le=100)
    backoffPolicy: Literal["linear", "exponential"] = "exponential"
    backoffDelay: Duration = 0.2
    timeout: Duration = 10.0
    format: Literal["binary", "structured", "json"] = "binary"

    @property
    def structured(self) -> bool:
        return self.format != "binary"

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        n = attempt - 1
        if self.backoffPolicy == "linear":
            return self.backoffDelay * n
        return self.backoffDelay * 2 ** (n - 1)


DEFAULT_DELIVERY = DeliverySpec()


class FilterSpec(Model):
    """Which events pass, on a Trigger input or subscriber. Every clause given must hold.

    ``exact``, ``prefix`` and ``suffix`` map CloudEvents attribute names (``type``,
    ``source``, ``subject``, an extension, ...) to strings, as Knative's filters do;
    they are plain string tests, the fast path. ``cel`` is a CEL expression over
    ``event`` (its attributes, and ``event.data`` for JSON data; ``data`` is a
    shorthand for ``event.data``).
    """

    exact: dict[str, str] = Field(default_factory=dict)
    prefix: dict[str, str] = Field(default_factory=dict)
    suffix: dict[str, str] = Field(default_factory=dict)
    cel: str | None = None

    @field_validator("exact", "prefix", "suffix")
    @classmethod
    def _attribute_names(cls, clauses: dict[str, str]) -> dict[str, str]:
        for name in clauses:
            if not _ATTRIBUTE_NAME.fullmatch(name):
                raise ValueError(
                    f"{quote(name)} is not a CloudEvents attribute name (lower-case letters and "
                    f"digits, at most 20), e.g. 'type', 'source', 'subject', 'partitionkey'"
                )
        return clauses

    @model_validator(mode="after")
    def _not_empty(self) -> FilterSpec:
        if not (self.exact or self.prefix or self.suffix or self.cel):
            raise ValueError("an empty filter passes everything; set exact, prefix, suffix or cel")
        return self
