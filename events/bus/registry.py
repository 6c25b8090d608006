"""The explicit registry of bus backends: Dapr component type -> EventBus class."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from events.bus.contract import EventBus
from events.bus.memory import MemoryBus
from events.errors import BackendNotAvailable
from events.manifests.buses import BusPlan

BusFactory = Callable[[Mapping[str, str]], EventBus]

BACKENDS: dict[str, BusFactory] = {
    "pubsub.in-memory": lambda metadata: MemoryBus(),
}
#: Known to Dapr and planned for fnevents, so the error can say "not yet" instead of "unknown".
PLANNED = ("pubsub.redis", "pubsub.kafka", "pubsub.jetstream", "pubsub.mqtt3")


def create_bus(plan: BusPlan) -> EventBus:
    return backend_factory(plan)(plan.metadata)


def backend_factory(plan: BusPlan) -> BusFactory:
    """The factory for ``plan``'s backend; raises BackendNotAvailable naming what is missing."""
    factory = BACKENDS.get(plan.backend)
    if factory is not None:
        return factory
    available = ", ".join(sorted(BACKENDS))
    if plan.backend in PLANNED:
        raise BackendNotAvailable(
            f"{plan.via} needs the {plan.backend} backend, which is not available in this "
            f"version of fnevents yet; available: {available}"
        )
    raise BackendNotAvailable(
        f"{plan.via}: unknown pub/sub type '{plan.backend}'; available: {available}"
    )
