"""Warnings about a Trigger input that reads a bus topic (the ``topic:`` extension).

Such a topic may be filled by anything on the bus -- a Dapr app, a Function's output,
another Trigger -- so nothing in the manifests has to publish on it and its absence is
no error. Two mistakes are visible from the manifests, though, and are warned about:

- a Function whose output publishes that topic on another EventBus: the Trigger never
  sees those events;
- a subscriber of the same Trigger publishing on that topic: what it delivers comes
  back to the Trigger's own input, a loop unless a filter or the condition stops it.
"""

from __future__ import annotations

from events.app.catalog import Catalog
from events.app.plans import bus_plan
from events.errors import ManifestError, shown
from events.manifests.loader import Loaded


def warn_about_topic_input(trigger: Loaded, name: str, topic: str, catalog: Catalog) -> None:
    """Add to ``catalog.warnings`` what is wrong with ``trigger``'s input ``name``."""
    spec = trigger.resource.spec
    where = f"{trigger.label}: input '{name}' reads topic '{shown(topic)}'"
    trigger_bus = _bus_key(catalog, trigger.namespace, spec.eventBus)
    for function in catalog.of_kind("Function"):
        for output, ref in function.resource.spec.outputs.items():
            if ref.topic != topic or ref.bus is None:
                continue
            if _bus_key(catalog, function.namespace, ref.bus) != trigger_bus:
                catalog.warnings.append(
                    f"{where}, which {function.label} output '{shown(output)}' publishes on "
                    f"EventBus '{shown(ref.bus)}', not on the trigger's "
                    f"'{shown(spec.eventBus)}'"
                )
    for index, subscriber in enumerate(spec.subscribers):
        if topic in (subscriber.topic, subscriber.replyTopic):
            catalog.warnings.append(
                f"{where}, on which its own subscribers[{index}] publishes: what that "
                "subscriber delivers comes back to this input, a loop unless a filter or "
                "the condition stops it"
            )


def _bus_key(catalog: Catalog, namespace: str, name: str) -> str | None:
    try:
        return bus_plan(catalog, namespace, name).key
    except (KeyError, ManifestError):
        return None
