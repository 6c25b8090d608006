"""Which dead-letter topics, on which bus, a ``deadletters`` command reads."""

from __future__ import annotations

from dataclasses import dataclass

from events.app.catalog import Catalog
from events.app.plans import bus_plan, dead_letter_topic
from events.bus.plan import BusPlan
from events.deadletters.errors import UnknownDeadLetters


@dataclass(frozen=True)
class Selection:
    """Topics on one bus, and what they belong to (for messages)."""

    plan: BusPlan
    topics: tuple[str, ...]
    owner: str  # e.g. "Trigger default/orders" or "topic x on EventBus default"


def trigger_topics(catalog: Catalog, namespace: str, name: str) -> Selection:
    """A Trigger's default dead-letter topic, then its subscribers' ``deadLetterTopic``s."""
    item = catalog.get("Trigger", namespace, name)
    if item is None:
        known = sorted(f"{t.namespace}/{t.name}" for t in catalog.of_kind("Trigger"))
        listed = ", ".join(known) if known else "none"
        raise UnknownDeadLetters(
            f"no Trigger '{name}' in namespace '{namespace}' in the manifests (Triggers: "
            f"{listed}); pass the same -f and --components as to `fnevents run`, and "
            "--namespace if it is not 'default'"
        )
    spec = item.resource.spec
    topics = [dead_letter_topic(item)]
    topics += [s.deadLetterTopic for s in spec.subscribers if s.deadLetterTopic]
    plan = bus_plan(catalog, namespace, spec.eventBus)
    return Selection(plan, tuple(dict.fromkeys(topics)), f"Trigger {namespace}/{name}")


def named_topic(catalog: Catalog, namespace: str, bus: str, topic: str) -> Selection:
    """``topic`` on the EventBus (or ClusterEventBus) ``bus`` as seen from ``namespace``."""
    try:
        plan = bus_plan(catalog, namespace, bus)
    except KeyError:
        known = sorted(
            f"{b.namespace}/{b.name}" if b.kind == "EventBus" else f"ClusterEventBus {b.name}"
            for b in [*catalog.of_kind("EventBus"), *catalog.of_kind("ClusterEventBus")]
        )
        listed = ", ".join(known) if known else "none"
        raise UnknownDeadLetters(
            f"no EventBus or ClusterEventBus '{bus}' for namespace '{namespace}' in the "
            f"manifests (buses: {listed}); pick one with --bus"
        ) from None
    known = known_topics(catalog)
    if topic not in known:
        raise UnknownDeadLetters(
            f"topic '{topic}' is not a dead-letter topic of any Trigger, EventSource or "
            f"Function in the manifests; they are: {', '.join(sorted(known)) or 'none'}"
        )
    return Selection(plan, (topic,), f"topic {topic} on EventBus {bus}")


def known_topics(catalog: Catalog) -> set[str]:
    """Every dead-letter topic the manifests write to."""
    topics = {dead_letter_topic(t) for t in catalog.of_kind("Trigger")}
    for trigger in catalog.of_kind("Trigger"):
        subscribers = trigger.resource.spec.subscribers
        topics.update(s.deadLetterTopic for s in subscribers if s.deadLetterTopic)
    for kind in ("EventSource", "Function"):
        topics.update(dead_letter_topic(i) for i in catalog.of_kind(kind))
    return topics
