"""A Function's outputs: what each name in ``spec.outputs`` sends to.

- ``{topic, eventBus}``: publish on the bus (retried until the bus accepts it);
- ``{component, topic?}``: a Dapr output binding Component; ``bindings.kafka``
  is the type supported (see :mod:`events.brokers.kafka.binding`).

:class:`Outputs` builds the senders for the functions of one process and owns
one producer per binding Component, shared by every function that names it and
closed by :meth:`Outputs.close`. :func:`check_output` is the load-time check.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from events.app.plans import find_component
from events.app.secrets import resolve_component_metadata
from events.brokers.kafka.binding_settings import BINDING_TYPE, binding_settings
from events.bus.contract import EventBus
from events.bus.resilient import publish_until_accepted
from events.bus.retry import keep_running
from events.cloudevent import CloudEvent
from events.errors import ManifestError
from events.functions.context import Send
from events.manifests.function import OutputRef
from events.manifests.loader import Loaded
from events.observability.console import Console

if TYPE_CHECKING:
    from events.app.catalog import Catalog
    from events.brokers.kafka.binding import KafkaBinding

BINDING_TYPES = (BINDING_TYPE,)


def check_output(function: Loaded, name: str, ref: OutputRef, catalog: Catalog):
    """A ManifestError for a binding output that cannot work, else None."""
    if ref.component is None:
        return None
    field = f"spec.outputs.{name}.component"
    component = find_component(catalog, function.namespace, ref.component)
    if component is None:
        known = sorted(c.name for c in catalog.of_kind("Component"))
        return function.error(
            f"Component '{ref.component}' not found; loaded Components: {known or 'none'} "
            "(add it with -f or --components)",
            field,
        )
    kind = component.resource.spec.type
    if kind not in BINDING_TYPES:
        return function.error(
            f"Component '{ref.component}' has type '{kind}'; an output component must be an "
            f"output binding ({', '.join(BINDING_TYPES)}). To publish on the bus, write "
            "{topic: ..., eventBus: ...} instead",
            field,
        )
    try:
        settings = binding_settings(component, resolve_component_metadata(component, catalog))
    except ManifestError as exc:
        return exc
    if ref.topic is None and not settings.publishTopic:
        return function.error(
            f"Component '{ref.component}' has no 'publishTopic' metadata, so this output has "
            "no topic: add publishTopic to the Component or 'topic' to this output",
            f"spec.outputs.{name}",
        )
    return None


class Outputs:
    def __init__(
        self, catalog: Catalog, bus_for: Callable[[Loaded, str], EventBus], console: Console
    ) -> None:
        self._catalog = catalog
        self._bus_for = bus_for
        self._console = console
        self._bindings: dict[tuple[str, str], KafkaBinding] = {}

    async def senders(self, function: Loaded) -> dict[str, Send]:
        """One sender per declared output; binding producers are started here."""
        senders: dict[str, Send] = {}
        for name, ref in function.resource.spec.outputs.items():
            if ref.component is None:
                bus = self._bus_for(function, ref.bus)
                senders[name] = partial(self._publish, bus, ref.topic)
            else:
                binding = await self._binding(function, ref.component)
                senders[name] = partial(binding.send, topic=ref.topic)
        return senders

    async def close(self) -> None:
        bindings, self._bindings = list(self._bindings.values()), {}
        for binding in bindings:
            await binding.close()

    async def _publish(self, bus: EventBus, topic: str, event: CloudEvent) -> None:
        await publish_until_accepted(bus, topic, event, event.subject, self._console.warn)

    async def _binding(self, function: Loaded, name: str) -> KafkaBinding:
        component = find_component(self._catalog, function.namespace, name)
        assert component is not None, "checked when the manifests loaded"
        key = (component.namespace, component.name)
        if key not in self._bindings:
            from events.brokers.kafka.binding import KafkaBinding  # imports the Kafka client

            metadata = resolve_component_metadata(component, self._catalog)
            binding = KafkaBinding(component.name, binding_settings(component, metadata))
            await keep_running(
                f"output {binding.describe()}", binding.start, self._console, only_retriable=True
            )
            self._bindings[key] = binding
            self._console.say(f"output: {binding.describe()}")
        return self._bindings[key]
