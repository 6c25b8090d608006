"""A Function's ``spec.states``: checking them at load, and opening them at start.

``spec.states`` maps a name the code uses (``context.state["name"]``) to a Dapr
``state.redis`` Component, found in the Function's namespace and then ``default``
(as for buses; ``--components`` replaces it the same way). Its metadata is
validated by the same settings model as a Trigger's ``conditionStore``, secrets
resolved as everywhere (:mod:`events.app.secrets`).

One Redis client per Component, shared by every Function of the process that
names it; :meth:`FunctionStates.close` closes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from events.app.catalog import Catalog
from events.app.state_stores import Use, state_component
from events.brokers import BROKERS
from events.brokers.registry import PARTS
from events.errors import BackendNotAvailable, ManifestError
from events.functions.state import StateStore, StateStores, key_prefix
from events.manifests.loader import Loaded

#: Dapr state store type -> its key/value store ("module:Class"), from the broker descriptors.
KEY_VALUE = {b.state.component_type: b.kv for b in BROKERS if b.state is not None and b.kv}


def check_function_states(function: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    """Load errors for every store in ``function``'s ``spec.states``."""
    for name in function.resource.spec.states:
        try:
            _resolve(function, name, catalog)
        except ManifestError as exc:
            yield exc


def _resolve(function: Loaded, name: str, catalog: Catalog) -> tuple[Loaded, Any]:
    """The Component ``spec.states[name]`` names, and its validated settings."""
    use = Use("a Function's state store", f"state '{name}' of {function.label}")
    component_name = function.resource.spec.states[name]
    field = f"spec.states.{name}"
    return state_component(function, component_name, field, catalog, KEY_VALUE, use)


def describe_function_states(function: Loaded, catalog: Catalog) -> list[str]:
    """One line per store, for ``fnevents validate``."""
    lines = []
    for name in sorted(function.resource.spec.states):
        component, settings = _resolve(function, name, catalog)
        prefix = key_prefix(settings.keyPrefix, component.name, function.name, function.namespace)
        keys = f"keys {prefix}||KEY" if prefix else "keys KEY (no prefix)"
        lines.append(
            f"state '{name}': {component.resource.spec.type} Component {component.name} "
            f"at {settings.address}, {keys}"
        )
    return lines


class FunctionStates:
    """The key/value clients of every Function of one process, one per Component."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._clients: dict[tuple[str, str], Any] = {}

    async def stores(self, function: Loaded) -> StateStores | None:
        """``context.state`` for ``function``; None when it declares no states. Nothing
        connects here: a store that cannot be reached fails the call that uses it."""
        if not function.resource.spec.states:
            return None
        loop = asyncio.get_running_loop()
        stores = {}
        for name in function.resource.spec.states:
            component, settings = _resolve(function, name, self._catalog)
            keys = await self._client(component, settings)
            prefix = key_prefix(
                settings.keyPrefix, component.name, function.name, function.namespace
            )
            stores[name] = StateStore(name, keys, prefix, loop)
        return StateStores(f"{function.namespace}/{function.name}", stores)

    async def _client(self, component: Loaded, settings: Any) -> Any:
        key = (component.namespace, component.name)
        if key not in self._clients:
            broker, _ = PARTS[component.resource.spec.type]
            try:
                client_class = broker.load(KEY_VALUE[component.resource.spec.type])
            except BackendNotAvailable as exc:
                raise component.error(str(exc), "spec.type") from None
            self._clients[key] = client_class(settings, component.name)
        return self._clients[key]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
