"""A Function's outputs: the senders behind ``context.send(name, data)``.

- a bus topic: publish, retried until the bus accepts it;
- a Dapr output binding Component (``bindings.kafka``, see the broker descriptors):
  one client per Component, shared by every function of the process that names it,
  started on first use and closed by :meth:`Outputs.close`.

Which output is which is resolved by the app from the manifests; this module only
sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from events.bus.contract import EventBus
from events.bus.resilient import keep_running, publish_until_accepted
from events.cloudevent import CloudEvent
from events.functions.context import Send
from events.observability.console import Console


class Binding(Protocol):
    """An output binding's client. ``start`` raises FnEventsError(retriable=True) while its
    broker is unreachable; ``send`` returns once the broker has the event."""

    def describe(self) -> str: ...

    async def start(self) -> None: ...

    async def send(self, event: CloudEvent, topic: str | None = None) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class BindingTarget:
    """An output binding Component, resolved: what to build and with what settings."""

    key: tuple[str, str]  # the Component's (namespace, name): one client per Component
    name: str
    build: Callable[[str, Any], Binding]  # (name, settings) -> a binding, not started
    settings: Any


class Outputs:
    def __init__(self, console: Console) -> None:
        self._console = console
        #: Component (namespace, name) -> the settings its running binding was built with,
        #: and that binding
        self._bindings: dict[tuple[str, str], tuple[Any, Binding]] = {}

    def to_bus(self, bus: EventBus, topic: str) -> Send:
        """A sender that publishes on ``topic`` of ``bus``."""
        return partial(self._publish, bus, topic)

    async def to_binding(self, target: BindingTarget, topic: str | None) -> Send:
        """A sender through ``target``'s binding, started here on first use, and again
        when its Component's settings changed (a reload restarts the Functions using it
        first, so the old binding has no users left when it is closed)."""
        held = self._bindings.get(target.key)
        if held is not None and held[0] != target.settings:
            del self._bindings[target.key]
            await held[1].close()
            self._console.say(f"output closed: {held[1].describe()} (its Component changed)")
            held = None
        if held is None:
            binding = target.build(target.name, target.settings)
            await keep_running(
                f"output {binding.describe()}", binding.start, self._console, only_retriable=True
            )
            held = self._bindings[target.key] = (target.settings, binding)
            self._console.say(f"output: {binding.describe()}")
        return partial(held[1].send, topic=topic)

    async def close(self) -> None:
        held, self._bindings = list(self._bindings.values()), {}
        for _, binding in held:
            await binding.close()

    async def _publish(self, bus: EventBus, topic: str, event: CloudEvent) -> None:
        await publish_until_accepted(bus, topic, event, event.subject, self._console.warn)
