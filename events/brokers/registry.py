"""Lookups over the broker descriptors: which broker serves a Dapr component type, its
settings, and its parts, loaded only when used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.brokers import BROKERS
from events.bus.broker import Broker, Part
from events.bus.contract import EventBus
from events.bus.plan import BusPlan
from events.bus.settings import validate_metadata
from events.errors import BackendNotAvailable
from events.manifests.loader import Loaded

#: Dapr component type -> (the broker, the part serving it), for every part of every broker.
PARTS: dict[str, tuple[Broker, Part]] = {
    part.component_type: (broker, part) for broker in BROKERS for part in broker.parts()
}
BUS_TYPES = tuple(broker.bus.component_type for broker in BROKERS)


def broker_named(name: str) -> Broker:
    return next(b for b in BROKERS if b.name == name)


def part_for(component_type: str, role: str = "pub/sub") -> tuple[Broker, Part]:
    """The broker and part serving ``component_type``; BackendNotAvailable lists the types
    of the same family (``pubsub.*``, ``state.*``, ...) that exist."""
    found = PARTS.get(component_type)
    if found is None:
        family = component_type.partition(".")[0] + "."
        known = sorted(t for t in PARTS if t.startswith(family)) or sorted(BUS_TYPES)
        raise BackendNotAvailable(
            f"unknown {role} type '{component_type}'; available: {', '.join(known)}"
        )
    return found


def component_settings(
    component_type: str,
    metadata: Mapping[str, str],
    component: Loaded | None,
    via: str,
    role: str = "pub/sub",
) -> Any:
    """Validated settings for a component of ``component_type`` (imports no client)."""
    broker, part = part_for(component_type, role)
    model = broker.load(part.settings)
    return validate_metadata(model, metadata, component_type, component, via)


def bus_settings(plan: BusPlan) -> Any:
    """The plan's component metadata, validated by its backend's settings model."""
    try:
        return component_settings(plan.backend, plan.metadata, plan.component, plan.via)
    except BackendNotAvailable as exc:
        raise BackendNotAvailable(f"{plan.via}: {exc}") from None


def create_bus(plan: BusPlan, pubsub_name: str | None = None) -> EventBus:
    """A bus (not started) for ``plan``; ``pubsub_name`` overrides the plan's."""
    broker, part = part_for(plan.backend)
    bus_class = broker.load(part.target)
    return bus_class(bus_settings(plan), pubsub_name=pubsub_name or plan.pubsub_name)
