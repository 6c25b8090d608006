"""The validated model of everything loaded: lookups, cross-references, topics, buses.

``Catalog.build`` takes loaded resources, applies component overrides (how a
user swaps the broker), and checks every reference, so that the runtime can
trust what it is given. All errors found are raised together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from events.app.checks import check_all
from events.app.plans import BusPlan, plan_bus
from events.errors import ManifestError, ManifestErrors
from events.manifests.loader import Loaded
from triggers.conditions import Condition
from triggers.filters import EventFilter

Key = tuple[str, str, str]  # (kind, namespace, name); namespace is "*" for cluster kinds
CLUSTER_KINDS = frozenset({"ClusterEventBus"})


def key_of(item: Loaded) -> Key:
    return (item.kind, "*" if item.kind in CLUSTER_KINDS else item.namespace, item.name)


def topic_for(namespace: str, eventsource: str, event: str) -> str:
    """The bus topic of one event of one EventSource, as OpenFunction names it."""
    return f"{namespace}-{eventsource}-{event}"


@dataclass
class Catalog:
    resources: dict[Key, Loaded] = field(default_factory=dict)
    conditions: dict[tuple[Key, int], Condition] = field(default_factory=dict)
    #: compiled ``filter`` extensions: (trigger key, "inputs", input name) or
    #: (trigger key, "subscribers", index)
    filters: dict[tuple[Key, str, str | int], EventFilter] = field(default_factory=dict)
    component_metadata: dict[Key, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, loaded: Iterable[Loaded], overrides: Iterable[Loaded] = ()) -> Catalog:
        """Index, override and check; raise ``ManifestErrors`` listing every problem."""
        catalog = cls()
        errors: list[ManifestError] = []
        for item in loaded:
            key = key_of(item)
            if key in catalog.resources:
                first = catalog.resources[key]
                errors.append(
                    item.error(
                        f"duplicate {item.kind} '{item.namespace}/{item.name}': already defined "
                        f"in {first.origin}; names must be unique per kind and namespace"
                    )
                )
                continue
            catalog.resources[key] = item
        for item in overrides:  # --components: same name replaces, a new name adds
            catalog.resources[key_of(item)] = item
        errors.extend(check_all(catalog))
        if errors:
            raise ManifestErrors(errors)
        return catalog

    def of_kind(self, kind: str) -> list[Loaded]:
        return [item for (k, _, _), item in self.resources.items() if k == kind]

    def get(self, kind: str, namespace: str, name: str) -> Loaded | None:
        return self.resources.get((kind, namespace, name))

    def find_bus(self, namespace: str, name: str) -> Loaded | None:
        """The EventBus in ``namespace``, else the ClusterEventBus, else None."""
        return self.get("EventBus", namespace, name) or self.get("ClusterEventBus", "*", name)

    def bus_plan(self, namespace: str, name: str) -> BusPlan:
        bus = self.find_bus(namespace, name)
        if bus is None:
            raise KeyError(name)
        return plan_bus(bus, self, namespace)

    def find_function(self, ref: Any, namespace: str) -> Loaded | None:
        return self.get("Function", ref.namespace or namespace, ref.name)
