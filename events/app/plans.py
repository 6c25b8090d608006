"""How an EventBus picks its broker (fnevents' extension, fixed for portability).

- ``spec.component: NAME`` names a Dapr pub/sub ``Component``; its ``spec.type``
  selects the backend.
- ``spec.natsStreaming`` maps to NATS JetStream at the same ``natsURL`` (NATS
  Streaming is end-of-life upstream).
- ``spec.component`` with ``spec.sidecar: true``: the Dapr sidecar's pub/sub
  component of that name, through the ``dapr`` SDK (the Component itself lives in
  the sidecar's configuration, so it need not be among our manifests).
- No broker settings at all: the embedded in-memory bus, shared by every such
  EventBus in the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from events.app.secrets import resolve_component_metadata
from events.manifests.loader import Loaded

if TYPE_CHECKING:
    from events.app.catalog import Catalog

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


def find_component(catalog: Catalog, namespace: str, name: str) -> Loaded | None:
    """The Component in ``namespace``, falling back to ``default`` (local files rarely set one)."""
    return catalog.get("Component", namespace, name) or catalog.get("Component", "default", name)


def plan_bus(bus: Loaded, catalog: Catalog, namespace: str) -> BusPlan:
    """The plan for ``bus`` as used from ``namespace``.

    A ClusterEventBus is cluster-scoped, so its Component is looked up in the
    namespace of the resource using it (then ``default``).
    """
    spec = bus.resource.spec
    via = f"{bus.kind} {bus.name}"
    if spec.sidecar:
        return BusPlan(
            key=f"dapr:{spec.component}",
            backend=SIDECAR,
            via=via,
            metadata={"pubsubName": spec.component},
        )
    if spec.component:
        home = namespace if bus.kind == "ClusterEventBus" else bus.namespace
        component = find_component(catalog, home, spec.component)
        if component is None:
            raise bus.error(f"Component '{spec.component}' not found", "spec.component")
        return BusPlan(
            key=f"component:{component.namespace}/{component.name}",
            backend=component.resource.spec.type,
            via=via,
            component=component,
            metadata=resolve_component_metadata(component, catalog),
        )
    if spec.natsStreaming is not None:
        url = spec.natsStreaming.natsURL
        return BusPlan(
            key=f"jetstream:{url}",
            backend=JETSTREAM,
            via=via,
            metadata={"natsURL": url, "durableName": spec.natsStreaming.durableSubscriptionName},
            notice=(
                f"{via}: NATS Streaming is end-of-life upstream; "
                f"using NATS JetStream at {url} instead"
            ),
        )
    return BusPlan(
        key="embedded",
        backend=EMBEDDED,
        via=via,
        notice=f"{via} has no broker settings: using the embedded in-memory bus "
        "(one process, not persistent; set spec.component to use a broker)",
    )
