"""fnevents' extension fields: things OpenFunction lacks, in Knative's vocabulary."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.manifests.common import Duration, Model


class DeliverySpec(Model):
    """How a subscriber's sink is retried before its event goes to the dead letter.

    The names and meanings are Knative's ``delivery`` spec: ``retry`` extra attempts
    after the first, waiting ``backoffDelay`` (linear: delay * n; exponential:
    delay * 2^(n-1)) between them, each attempt limited to ``timeout``.
    """

    retry: int = Field(default=3, ge=0, le=100)
    backoffPolicy: Literal["linear", "exponential"] = "exponential"
    backoffDelay: Duration = 0.2
    timeout: Duration = 10.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        n = attempt - 1
        if self.backoffPolicy == "linear":
            return self.backoffDelay * n
        return self.backoffDelay * 2 ** (n - 1)


DEFAULT_DELIVERY = DeliverySpec()
