"""What was loaded, for the console's "Loaded" panel: the resources, the file and
document each came from, the bus each uses, and the same lines ``fnevents validate``
prints (buses, topics, conditions, filters, warnings)."""

from __future__ import annotations

from typing import Any

from events.app.catalog import Catalog
from events.app.plans import bus_plan
from events.app.report import ORDER, describe_catalog
from events.manifests.loader import Loaded


def loaded(catalog: Catalog, running: set[tuple[str, str, str]]) -> dict[str, Any]:
    items = sorted(
        catalog.resources.values(), key=lambda i: (ORDER.index(i.kind), i.namespace, i.name)
    )
    return {
        "files": sorted({i.origin.file for i in items}),
        "resources": [_resource(item, catalog, running) for item in items],
        "report": list(describe_catalog(catalog)),
        "warnings": list(catalog.warnings),
    }


def _resource(item: Loaded, catalog: Catalog, running: set[tuple[str, str, str]]) -> dict:
    spec = getattr(item.resource, "spec", None)
    bus_name = getattr(spec, "eventBus", None)
    bus = None
    if bus_name:
        try:
            bus = f"{bus_name}: {bus_plan(catalog, item.namespace, bus_name).describe()}"
        except KeyError:
            bus = f"{bus_name} (not found)"
    return {
        "kind": item.kind,
        "namespace": item.namespace,
        "name": item.name,
        "origin": str(item.origin),
        "bus": bus,
        "running": (item.kind, item.namespace, item.name) in running,
    }
