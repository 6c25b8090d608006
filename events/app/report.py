"""What ``fnevents validate`` prints: each resource, its topics, and the bus it uses."""

from __future__ import annotations

from collections.abc import Iterator

from events.app.catalog import Catalog
from events.app.function_states import describe_function_states
from events.app.ofn_report import describe as describe_openfunction
from events.app.plans import bus_plan, plan_trigger, topic_for
from events.app.state_stores import describe_condition_state
from events.manifests.loader import Loaded
from triggers.filters import EventFilter

ORDER = ("Component", "Secret", "EventBus", "ClusterEventBus", "Function", "EventSource", "Trigger")


def describe_catalog(catalog: Catalog) -> Iterator[str]:
    items = sorted(
        catalog.resources.values(), key=lambda i: (ORDER.index(i.kind), i.namespace, i.name)
    )
    files = {i.origin.file for i in items}
    yield f"loaded {len(items)} resource(s) from {len(files)} file(s)"
    for item in items:
        yield f"  {item.kind} {_name(item)}"
        for line in _details(item, catalog):
            yield f"      {line}"
    for warning in catalog.warnings:
        yield f"warning: {warning}"
    yield "ok: no errors"


def _name(item: Loaded) -> str:
    return item.name if item.kind == "ClusterEventBus" else f"{item.namespace}/{item.name}"


def _details(item: Loaded, catalog: Catalog) -> Iterator[str]:
    spec = getattr(item.resource, "spec", None)
    if item.kind == "Component":
        yield f"type {spec.type}"
    elif item.kind in ("EventBus", "ClusterEventBus"):
        plan = bus_plan(catalog, item.namespace, item.name)
        yield f"bus: {plan.describe()}"
        if plan.notice:
            yield f"note: {plan.notice}"
    elif item.kind == "Function":
        mapped = list(describe_openfunction(item))
        yield from mapped or [f"{spec.source}:{spec.target}"]
        yield from describe_function_states(item, catalog)
    elif item.kind == "EventSource":
        yield from _eventsource(item, catalog)
    elif item.kind == "Trigger":
        yield from _trigger(item, catalog)


def _eventsource(item: Loaded, catalog: Catalog) -> Iterator[str]:
    spec = item.resource.spec
    if spec.eventBus:
        yield f"bus {spec.eventBus}: {bus_plan(catalog, item.namespace, spec.eventBus).describe()}"
    if spec.sink:
        yield f"sink: {spec.sink.describe()}"
    for kind, event, _ in spec.events():
        yield f"{kind} event '{event}' -> topic {topic_for(item.namespace, item.name, event)}"


def _trigger(item: Loaded, catalog: Catalog) -> Iterator[str]:
    spec = item.resource.spec
    plan = plan_trigger(item)
    yield f"bus {spec.eventBus}: {bus_plan(catalog, item.namespace, spec.eventBus).describe()}"
    yield f"condition state: {describe_condition_state(item, catalog)}"
    for name, topic in plan.inputs.items():
        yield f"input {name} <- topic {topic}"
        yield from _filter(plan.input_filters.get(name))
    for sub, compiled in zip(spec.subscribers, plan.subscribers, strict=True):
        targets = [
            f"sink {sub.sink.describe()}" if sub.sink else None,
            f"topic {sub.topic}" if sub.topic else None,
        ]
        line = f"subscriber {compiled.index} when [{sub.condition}] -> " + " and ".join(
            t for t in targets if t
        )
        if sub.sink:
            dead = (
                sub.deadLetterSink.describe() if sub.deadLetterSink else compiled.dead_letter_topic
            )
            line += f"; dead letters -> {dead}"
        yield line
        yield from _filter(compiled.filter)


def _filter(found: EventFilter | None) -> Iterator[str]:
    if found is not None:
        yield f"  filter: {found.description}"
