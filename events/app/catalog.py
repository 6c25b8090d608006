"""Everything loaded, indexed by kind, namespace and name, with the warnings found.

A :class:`Catalog` is only an index: the checks that make it trustworthy are in
:mod:`events.app.checks`, and what runs is computed from it by :mod:`events.app.plans`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from events.errors import ManifestError
from events.manifests.loader import Loaded

Key = tuple[str, str, str]  # (kind, namespace, name); namespace is "*" for cluster kinds
CLUSTER_KINDS = frozenset({"ClusterEventBus"})


def key_of(item: Loaded) -> Key:
    return (item.kind, "*" if item.kind in CLUSTER_KINDS else item.namespace, item.name)


@dataclass
class Catalog:
    resources: dict[Key, Loaded] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def index(
        cls, loaded: Iterable[Loaded], overrides: Iterable[Loaded] = ()
    ) -> tuple[Catalog, list[ManifestError]]:
        """Index ``loaded`` (a duplicate is an error), then let ``overrides`` replace or add
        (how ``--components`` swaps the broker)."""
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
        for item in overrides:
            catalog.resources[key_of(item)] = item
        return catalog, errors

    def of_kind(self, kind: str) -> list[Loaded]:
        return [item for (k, _, _), item in self.resources.items() if k == kind]

    def get(self, kind: str, namespace: str, name: str) -> Loaded | None:
        return self.resources.get((kind, namespace, name))

    def find_bus(self, namespace: str, name: str) -> Loaded | None:
        """The EventBus in ``namespace``, else the ClusterEventBus, else None."""
        return self.get("EventBus", namespace, name) or self.get("ClusterEventBus", "*", name)

    def find_function(self, ref: Any, namespace: str) -> Loaded | None:
        return self.get("Function", ref.namespace or namespace, ref.name)

    def find_component(self, namespace: str, name: str) -> Loaded | None:
        """The Component in ``namespace``, falling back to ``default`` (local files rarely
        set one)."""
        return self.get("Component", namespace, name) or self.get("Component", "default", name)
