"""Cross-reference checks over a whole catalog, run once when manifests load.

Each check returns ManifestErrors (never raises), so one pass reports every
problem. Things that are valid but will not run in this build are warnings.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from typing import Any

from events.app.catalog import Catalog
from events.app.function_states import check_function_states
from events.app.plans import bus_plan, plan_trigger
from events.app.secrets import resolve_component_metadata
from events.app.state_stores import check_condition_store
from events.app.topic_inputs import warn_about_topic_input
from events.brokers.registry import PARTS, bus_settings, component_settings
from events.errors import (
    BackendNotAvailable,
    FnEventsError,
    ManifestError,
    ManifestErrors,
    shown,
)
from events.functions.address import remote_url
from events.manifests.common import SinkSpec
from events.manifests.function import OutputRef
from events.manifests.loader import Loaded
from sources.registry import make_source

#: The Dapr output binding types some broker serves, e.g. ``bindings.kafka``.
BINDING_TYPES = tuple(sorted(t for t in PARTS if t.startswith("bindings.")))


def checked_catalog(loaded: Iterable[Loaded], overrides: Iterable[Loaded] = ()) -> Catalog:
    """Index, override and check; raise ``ManifestErrors`` listing every problem."""
    catalog, errors = Catalog.index(loaded, overrides)
    errors.extend(check_all(catalog))
    if errors:
        raise ManifestErrors(errors)
    return catalog


def check_all(catalog: Catalog) -> list[ManifestError]:
    errors: list[ManifestError] = []
    for bus in catalog.of_kind("EventBus") + catalog.of_kind("ClusterEventBus"):
        errors.extend(_check_bus(bus, catalog))
    for source in catalog.of_kind("EventSource"):
        errors.extend(_check_eventsource(source, catalog))
    for trigger in catalog.of_kind("Trigger"):
        errors.extend(_check_trigger(trigger, catalog))
    for function in catalog.of_kind("Function"):
        errors.extend(_check_function(function, catalog))
    return errors


def _check_function(function: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    spec = function.resource.spec
    buses = [("spec.input", spec.input and spec.input.eventBus)] + [
        (f"spec.outputs.{name}", ref.bus) for name, ref in spec.outputs.items()
    ]
    for field, bus in buses:
        if bus and (error := _check_bus_ref(function, bus, f"{field}.eventBus", catalog)):
            yield error
    for name, ref in spec.outputs.items():
        if error := _check_output(function, name, ref, catalog):
            yield error
    yield from check_function_states(function, catalog)


def _check_output(
    function: Loaded, name: str, ref: OutputRef, catalog: Catalog
) -> ManifestError | None:
    """A ManifestError for a binding output that cannot work, else None."""
    if ref.component is None:
        return None
    field = f"spec.outputs.{name}.component"
    component = catalog.find_component(function.namespace, ref.component)
    if component is None:
        known = sorted(c.name for c in catalog.of_kind("Component"))
        return function.error(
            f"Component '{shown(ref.component)}' not found; loaded Components: {known or 'none'} "
            "(add it with -f or --components)",
            field,
        )
    kind = component.resource.spec.type
    if kind not in BINDING_TYPES:
        return function.error(
            f"Component '{shown(ref.component)}' has type '{shown(kind)}'; an output component "
            f"must be an output binding ({', '.join(BINDING_TYPES)}). To publish on the bus, write "
            "{topic: ..., eventBus: ...} instead",
            field,
        )
    try:
        settings = binding_settings(component, catalog)
    except ManifestError as exc:
        return exc
    if ref.topic is None and not settings.publishTopic:
        return function.error(
            f"Component '{shown(ref.component)}' has no 'publishTopic' metadata, so this "
            "output has no topic: add publishTopic to the Component or 'topic' to this output",
            f"spec.outputs.{name}",
        )
    return None


def binding_settings(component: Loaded, catalog: Catalog):
    """An output binding Component's validated settings (a ManifestError names the field)."""
    metadata = resolve_component_metadata(component, catalog)
    kind = component.resource.spec.type
    return component_settings(kind, metadata, component, component.label, "output binding")


def _check_bus(bus: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    name = bus.resource.spec.component
    if not name or bus.resource.spec.sidecar:
        yield from _check_backend(bus, catalog, bus.namespace)
        return
    if bus.kind == "ClusterEventBus":  # cluster-scoped: any namespace may supply the Component
        component = next((c for c in catalog.of_kind("Component") if c.name == name), None)
    else:
        component = catalog.find_component(bus.namespace, name)
    if component is None:
        known = sorted(c.name for c in catalog.of_kind("Component"))
        yield bus.error(
            f"Component '{shown(name)}' not found; loaded Components: {known or 'none'} "
            "(add one with -f or --components)",
            "spec.component",
        )
        return
    if not component.resource.is_pubsub:
        yield bus.error(
            f"Component '{shown(name)}' has type '{shown(component.resource.spec.type)}', "
            "but an EventBus needs a pub/sub component (pubsub.*)",
            "spec.component",
        )
        return
    user_namespace = component.namespace if bus.kind == "ClusterEventBus" else bus.namespace
    try:
        bus_plan(catalog, user_namespace, bus.name)
    except ManifestError as exc:
        yield exc
        return
    yield from _check_backend(bus, catalog, user_namespace)


def _check_backend(bus: Loaded, catalog: Catalog, namespace: str) -> Iterator[ManifestError]:
    """Metadata errors are load errors; a backend this build lacks is a warning."""
    try:
        bus_settings(bus_plan(catalog, namespace, bus.name))
    except BackendNotAvailable as exc:
        catalog.warnings.append(f"{exc}; `fnevents run` will refuse to start it")
    except ManifestError as exc:
        yield exc


def _check_bus_ref(item: Loaded, name: str, field: str, catalog: Catalog) -> ManifestError | None:
    if catalog.find_bus(item.namespace, name) is not None:
        return None
    return item.error(
        f"EventBus '{shown(name)}' not found: there is no EventBus '{shown(name)}' in namespace "
        f"'{item.namespace}' and no ClusterEventBus '{shown(name)}'",
        field,
    )


def _check_sink(item: Loaded, sink: SinkSpec | None, field: str, catalog: Catalog):
    if sink is None or sink.uri is not None or sink.ref is None:
        return None
    ref = sink.ref
    if ref.kind != "Function":
        return item.error(
            f"sink.ref to a {shown(ref.kind)} cannot be resolved outside Kubernetes; use 'uri', or "
            f"refer to a Function declared with apiVersion fnevents.dev/v1alpha1",
            f"{field}.ref",
        )
    if catalog.find_function(ref, item.namespace) is None:
        return item.error(
            f"Function '{shown(ref.namespace or item.namespace)}/{shown(ref.name)}' not found; "
            "declare it with apiVersion fnevents.dev/v1alpha1, kind Function",
            f"{field}.ref",
        )
    return None


def _check_eventsource(source: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    spec = source.resource.spec
    if spec.eventBus and (error := _check_bus_ref(source, spec.eventBus, "spec.eventBus", catalog)):
        yield error
    for field in ("sink", "deadLetterSink"):
        if error := _check_sink(source, getattr(spec, field), f"spec.{field}", catalog):
            yield error
    for kind, event, _settings in spec.events():
        field = f"spec.{kind}.{event}"
        try:
            make_source(source, kind, event)
        except BackendNotAvailable as exc:
            catalog.warnings.append(f"{source.label}: {kind} event '{event}' will not run: {exc}")
        except (FnEventsError, ValueError) as exc:
            yield source.error(str(exc), field)


def _check_trigger(trigger: Loaded, catalog: Catalog) -> Iterator[ManifestError]:
    spec = trigger.resource.spec
    if error := _check_bus_ref(trigger, spec.eventBus, "spec.eventBus", catalog):
        yield error
    yield from check_condition_store(trigger, catalog)
    for name, source_ref in spec.inputs.items():
        yield from _check_input(trigger, name, source_ref, catalog)
    try:
        plan_trigger(trigger)
    except ManifestErrors as exc:
        yield from exc.errors
    for index, subscriber in enumerate(spec.subscribers):
        for sink_field in ("sink", "deadLetterSink"):
            sink = getattr(subscriber, sink_field)
            field = f"spec.subscribers[{index}].{sink_field}"
            if error := _check_sink(trigger, sink, field, catalog):
                yield error


def _check_input(trigger: Loaded, name: str, ref, catalog: Catalog) -> Iterator[ManifestError]:
    if ref.topic is not None:  # any topic of the bus: nothing in the manifests need fill it
        warn_about_topic_input(trigger, name, ref.topic, catalog)
        return
    field = f"spec.inputs.{name}"
    namespace = ref.namespace or trigger.namespace
    source = catalog.get("EventSource", namespace, ref.eventSource)
    if source is None:
        yield trigger.error(
            f"EventSource '{shown(namespace)}/{shown(ref.eventSource)}' not found",
            f"{field}.eventSource",
        )
        return
    events = {event for _, event, _ in source.resource.spec.events()}
    if ref.event not in events:
        yield trigger.error(
            f"EventSource '{shown(ref.eventSource)}' has no event '{shown(ref.event)}'; "
            f"its events are: {', '.join(sorted(events))}",
            f"{field}.event",
        )
        return
    source_bus = source.resource.spec.eventBus
    if not source_bus:
        catalog.warnings.append(
            f"{trigger.label}: input '{name}' reads EventSource '{shown(ref.eventSource)}', "
            "which has no eventBus, so it publishes nothing this trigger can receive"
        )
    elif _bus_key(catalog, namespace, source_bus) != _bus_key(
        catalog, trigger.namespace, trigger.resource.spec.eventBus
    ):
        catalog.warnings.append(
            f"{trigger.label}: input '{name}' reads EventSource '{shown(ref.eventSource)}', which "
            f"publishes on EventBus '{shown(source_bus)}', not on the trigger's "
            f"'{shown(trigger.resource.spec.eventBus)}'"
        )


def _bus_key(catalog: Catalog, namespace: str, name: str) -> str | None:
    try:
        return bus_plan(catalog, namespace, name).key
    except (KeyError, ManifestError):
        return None


def check_remote_sinks(
    items: Iterable[Loaded], catalog: Catalog, runs_here: Container[Loaded]
) -> None:
    """Before anything starts: every ``sink.ref`` of ``items`` to a Function that this
    process does not serve must have a stable address (raises FunctionAddressError)."""
    for item in items:
        for sink in _sinks(item.resource.spec):
            if sink is None or sink.uri or sink.ref is None:
                continue
            function = catalog.find_function(sink.ref, item.namespace)
            if function is None:
                continue  # a load error already
            if function not in runs_here or function.resource.spec.input is not None:
                remote_url(function)


def _sinks(spec: Any) -> Iterator[SinkSpec | None]:
    yield getattr(spec, "sink", None)
    yield getattr(spec, "deadLetterSink", None)
    for subscriber in getattr(spec, "subscribers", ()):
        yield subscriber.sink
        yield subscriber.deadLetterSink
