"""A Trigger's ``conditionStore`` (an fnevents extension): a Dapr state store Component.

``spec.conditionStore: NAME`` names a ``Component`` of type ``state.redis`` in the
Trigger's namespace (then ``default``, as for buses; ``--components`` replaces it
the same way). Its metadata uses Dapr's names and is validated when manifests load,
so a missing Component, a wrong type or a bad field is a load error. Without
``conditionStore`` the trigger keeps its condition state in its own process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import ValidationError

from events.app.plans import find_component
from events.app.secrets import resolve_component_metadata
from events.errors import ManifestError
from events.manifests.loader import Loaded
from triggers.state import IN_PROCESS

if TYPE_CHECKING:
    from events.app.catalog import Catalog
    from events.brokers.redis.state import RedisStateSettings
    from triggers.state import ConditionState

STATE_REDIS = "state.redis"
FIELD = "spec.conditionStore"


def check_condition_store(trigger: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    """Load errors for ``trigger``'s ``conditionStore``, if it names one."""
    name = trigger.resource.spec.conditionStore
    if not name:
        return
    component = find_component(catalog, trigger.namespace, name)
    if component is None:
        known = sorted(c.name for c in catalog.of_kind("Component"))
        yield trigger.error(
            f"Component '{name}' not found; loaded Components: {known or 'none'} (add a "
            f"{STATE_REDIS} Component with -f or --components, or remove conditionStore "
            "to keep condition state in the trigger's process)",
            FIELD,
        )
        return
    kind = component.resource.spec.type
    if kind != STATE_REDIS:
        yield trigger.error(
            f"Component '{name}' has type '{kind}', but a conditionStore must be a "
            f"{STATE_REDIS} Component (the only state store fnevents supports)",
            FIELD,
        )
        return
    try:
        store_settings(trigger, component, catalog)
    except ManifestError as exc:
        yield exc


def store_settings(trigger: Loaded, component: Loaded, catalog: Catalog) -> RedisStateSettings:
    """The Component's validated settings; a ManifestError names the Component and field."""
    from events.brokers.redis.state import RedisStateSettings
    from events.brokers.registry import metadata_error

    metadata = resolve_component_metadata(component, catalog)
    try:
        return RedisStateSettings.model_validate(metadata)
    except ValidationError as exc:
        fields = RedisStateSettings.model_fields
        error = metadata_error(exc, STATE_REDIS, component, component.label, fields)
        used = f" (the conditionStore of {trigger.label})"
        raise component.error(error.problem + used, error.field) from None


def condition_state(trigger: Loaded, catalog: Catalog) -> ConditionState | None:
    """The store ``trigger`` keeps its condition state in; None for the in-process default."""
    spec = trigger.resource.spec
    if not spec.conditionStore:
        return None
    from events.brokers.redis.state import RedisState

    component = find_component(catalog, trigger.namespace, spec.conditionStore)
    assert component is not None, "checked when the manifests loaded"
    settings = store_settings(trigger, component, catalog)
    name = f"{trigger.namespace}/{trigger.name}"
    return RedisState(settings, name, spec.conditionWindow, component.name)


def describe_condition_state(trigger: Loaded, catalog: Catalog) -> str:
    """Where ``trigger`` keeps its condition state, for ``fnevents validate``."""
    name = trigger.resource.spec.conditionStore
    if not name:
        return IN_PROCESS
    from events.brokers.redis.state import state_key

    component = find_component(catalog, trigger.namespace, name)
    assert component is not None, "checked when the manifests loaded"
    settings = store_settings(trigger, component, catalog)
    key = state_key(f"{trigger.namespace}/{trigger.name}")
    return f"{STATE_REDIS} Component {component.name} at {settings.address}, hash {key}"
