"""Which backend serves an EventBus, with what settings: the value the app plans and the
broker registry builds a bus from (see :mod:`events.app.plans` for how it is chosen)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from events.manifests.loader import Loaded

EMBEDDED = "pubsub.in-memory"
SIDECAR = "dapr"
JETSTREAM = "pubsub.jetstream"


@dataclass(frozen=True)
class BusPlan:
    """Which backend serves an EventBus, with what settings. Equal keys share one instance."""

    key: str
    backend: str
    via: str
    component: Loaded | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    notice: str | None = None

    def describe(self) -> str:
        if self.component is not None:
            return f"{self.backend} (Component {self.component.name})"
        if self.backend == SIDECAR:
            return f"Dapr sidecar pub/sub '{self.metadata['pubsubName']}'"
        if self.backend == JETSTREAM:
            return f"{JETSTREAM} at {self.metadata['natsURL']}"
        return "embedded in-memory bus"

    @property
    def pubsub_name(self) -> str:
        """The name Dapr's envelope carries: the Component's name, else 'eventbus'."""
        return self.component.name if self.component is not None else "eventbus"
