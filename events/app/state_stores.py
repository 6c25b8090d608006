"""A Trigger's ``conditionStore`` (an fnevents extension): a Dapr state store Component.

``spec.conditionStore: NAME`` names a ``Component`` of type ``state.redis`` in the
Trigger's namespace (then ``default``, as for buses; ``--components`` replaces it
the same way). Its metadata uses Dapr's names and is validated when manifests load,
so a missing Component, a wrong type or a bad field is a load error. Without
``conditionStore`` the trigger keeps its condition state in its own process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from events.app.catalog import Catalog
from events.app.secrets import resolve_component_metadata
from events.brokers.registry import PARTS, component_settings
from events.errors import BackendNotAvailable, ManifestError
from events.manifests.loader import Loaded
from triggers.state import IN_PROCESS, ConditionState

FIELD = "spec.conditionStore"
#: The Dapr state store types some broker serves, e.g. ``state.redis``.
STATE_TYPES = tuple(sorted(t for t in PARTS if t.startswith("state.")))


def state_component(
    item: Loaded, name: str, field: str, catalog: Catalog, types: Iterable[str], use: Use
) -> tuple[Loaded, Any]:
    """The state store Component ``name`` that ``item`` names at ``field`` (one of
    ``types``), and its validated settings; a ManifestError names what is wrong."""
    component = catalog.find_component(item.namespace, name)
    kinds = " or ".join(sorted(types))
    if component is None:
        known = sorted(c.name for c in catalog.of_kind("Component"))
        raise item.error(
            f"Component '{name}' not found; loaded Components: {known or 'none'} (add a "
            f"{kinds} Component with -f or --components{use.alternative})",
            field,
        )
    kind = component.resource.spec.type
    if kind not in types:
        raise item.error(
            f"Component '{name}' has type '{kind}', but {use.what} must be a {kinds} "
            "Component (the state stores fnevents supports)",
            field,
        )
    metadata = resolve_component_metadata(component, catalog)
    try:
        settings = component_settings(kind, metadata, component, component.label, "state")
    except ManifestError as exc:
        raise component.error(f"{exc.problem} ({use.by})", exc.field) from None
    return component, settings


@dataclass(frozen=True)
class Use:
    """How a resource uses a state store, for messages."""

    what: str  # "a conditionStore"
    by: str  # "the conditionStore of Trigger/t1 (...)"
    alternative: str = ""  # appended to "add a ... Component with -f or --components"


def check_condition_store(trigger: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    """Load errors for ``trigger``'s ``conditionStore``, if it names one."""
    if not trigger.resource.spec.conditionStore:
        return
    try:
        _store(trigger, catalog)
    except ManifestError as exc:
        yield exc


def _store(trigger: Loaded, catalog: Catalog) -> tuple[type, object, Loaded]:
    """The state class, its validated settings and the Component ``trigger`` names."""
    use = Use(
        "a conditionStore",
        f"the conditionStore of {trigger.label}",
        ", or remove conditionStore to keep condition state in the trigger's process",
    )
    name = trigger.resource.spec.conditionStore
    component, settings = state_component(trigger, name, FIELD, catalog, STATE_TYPES, use)
    broker, part = PARTS[component.resource.spec.type]
    try:
        return broker.load(part.target), settings, component
    except BackendNotAvailable as exc:
        raise component.error(str(exc), "spec.type") from None


def condition_state(trigger: Loaded, catalog: Catalog) -> ConditionState | None:
    """The store ``trigger`` keeps its condition state in; None for the in-process default."""
    spec = trigger.resource.spec
    if not spec.conditionStore:
        return None
    state_class, settings, component = _store(trigger, catalog)
    name = f"{trigger.namespace}/{trigger.name}"
    return state_class(settings, name, spec.conditionWindow, component.name)


def describe_condition_state(trigger: Loaded, catalog: Catalog) -> str:
    """Where ``trigger`` keeps its condition state, for ``fnevents validate``."""
    if not trigger.resource.spec.conditionStore:
        return IN_PROCESS
    state_class, settings, component = _store(trigger, catalog)
    return state_class.description(settings, f"{trigger.namespace}/{trigger.name}", component.name)
