"""What runs, computed from the catalog: names, buses and compiled triggers.

Every name the runtime uses on a broker (topics, consumer groups) is made here, once,
so that what runs and what is shown or rendered agree.

How an EventBus picks its broker (fnevents' extension, fixed for portability).

- ``spec.component: NAME`` names a Dapr pub/sub ``Component``; its ``spec.type``
  selects the backend.
- ``spec.natsStreaming`` maps to NATS JetStream at the same ``natsURL`` (NATS
  Streaming is end-of-life upstream).
- ``spec.component`` with ``spec.sidecar: true``: the Dapr sidecar's pub/sub
  component of that name, through the ``dapr`` SDK (the Component itself lives in
  the sidecar's configuration, so it need not be among our manifests).
- No broker settings at all: the embedded in-memory bus, shared by every such
  EventBus in the process.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.app.catalog import Catalog
from events.app.secrets import resolve_component_metadata
from events.bus.plan import EMBEDDED, JETSTREAM, SIDECAR, BusPlan
from events.bus.settings import SCOPING, UNSCOPED
from events.errors import ExpressionError, ManifestError, ManifestErrors
from events.manifests.extensions import FilterSpec
from events.manifests.loader import Loaded
from events.manifests.openfunction import TriggerInput
from triggers.conditions import Condition
from triggers.filters import EventFilter, compile_filter


def topic_for(namespace: str, eventsource: str, event: str) -> str:
    """The bus topic of one event of one EventSource, as OpenFunction names it."""
    return f"{namespace}-{eventsource}-{event}"


def input_topic(ref: TriggerInput, namespace: str) -> str:
    """The bus topic a Trigger input in ``namespace`` reads: its ``topic`` (extension) as
    written, else the topic its EventSource's event is published on."""
    origin = ref.origin(namespace)
    if origin is not None:
        return topic_for(*origin)
    assert ref.topic is not None, "TriggerInput's validator requires one or the other"
    return ref.topic


def group_of(item: Loaded) -> str:
    """The consumer group a Trigger or an async Function reads its topics as."""
    return f"{item.namespace}-{item.name}"


def dead_letter_topic(item: Loaded) -> str:
    """Where a Trigger, EventSource or Function puts what it cannot deliver by default."""
    return f"{item.namespace}-{item.name}-deadletter"


def reply_topic(trigger: Loaded) -> str:
    """Where a subscriber's sink replies go by default."""
    return f"{trigger.namespace}-{trigger.name}-reply"


def bus_plan(catalog: Catalog, namespace: str, name: str) -> BusPlan:
    """The plan of the EventBus ``name`` as used from ``namespace``; KeyError if none."""
    bus = catalog.find_bus(namespace, name)
    if bus is None:
        raise KeyError(name)
    return plan_bus(bus, catalog, namespace)


def plan_bus(bus: Loaded, catalog: Catalog, namespace: str) -> BusPlan:
    """The plan for ``bus`` as used from ``namespace``.

    A ClusterEventBus is cluster-scoped, so its Component is looked up in the
    namespace of the resource using it (then ``default``).
    """
    spec = bus.resource.spec
    via = f"{bus.kind} {bus.name}"
    if spec.sidecar:
        return BusPlan(
            key=f"dapr:{spec.component}",
            backend=SIDECAR,
            via=via,
            metadata={"pubsubName": spec.component},
        )
    if spec.component:
        home = namespace if bus.kind == "ClusterEventBus" else bus.namespace
        component = catalog.find_component(home, spec.component)
        if component is None:
            raise bus.error(f"Component '{spec.component}' not found", "spec.component")
        metadata = resolve_component_metadata(component, catalog)
        return BusPlan(
            key=f"component:{component.namespace}/{component.name}",
            backend=component.resource.spec.type,
            via=via,
            component=component,
            metadata=metadata,
            notice=_scoping_notice(component, metadata),
        )
    if spec.natsStreaming is not None:
        url = spec.natsStreaming.natsURL
        return BusPlan(
            key=f"jetstream:{url}",
            backend=JETSTREAM,
            via=via,
            metadata={"natsURL": url, "durableName": spec.natsStreaming.durableSubscriptionName},
            notice=(
                f"{via}: NATS Streaming is end-of-life upstream; "
                f"using NATS JetStream at {url} instead"
            ),
        )
    return BusPlan(
        key="embedded",
        backend=EMBEDDED,
        via=via,
        notice=f"{via} has no broker settings: using the embedded in-memory bus "
        "(one process, not persistent; set spec.component to use a broker)",
    )


def _scoping_notice(component: Loaded, metadata: dict[str, str]) -> str | None:
    scoping = [name for name in SCOPING if metadata.get(name)]
    if not scoping:
        return None
    return f"{component.label}: {', '.join(scoping)} {UNSCOPED}"


@dataclass(frozen=True)
class SubscriberPlan:
    index: int
    condition: Condition
    filter: EventFilter | None
    dead_letter_topic: str
    reply_topic: str


@dataclass(frozen=True)
class TriggerPlan:
    """One Trigger, compiled: its input topics, filters, conditions and names."""

    label: str  # namespace/name
    group: str
    inputs: dict[str, str]  # input name -> topic
    input_filters: dict[str, EventFilter]
    subscribers: list[SubscriberPlan]
    dead_letter_topic: str


def plan_trigger(trigger: Loaded) -> TriggerPlan:
    """Compile ``trigger``'s conditions and filters; ManifestErrors names every one that fails."""
    spec, ns = trigger.resource.spec, trigger.namespace
    errors: list[ManifestError] = []

    def compiled(filter_spec: FilterSpec | None, field: str) -> EventFilter | None:
        if filter_spec is None:
            return None
        try:
            return compile_filter(filter_spec)
        except ExpressionError as exc:
            errors.append(trigger.error(str(exc), f"{field}.filter.cel"))
            return None

    input_filters = {
        name: found
        for name, ref in spec.inputs.items()
        if (found := compiled(ref.filter, f"spec.inputs.{name}")) is not None
    }
    subscribers = []
    for index, sub in enumerate(spec.subscribers):
        field = f"spec.subscribers[{index}]"
        try:
            condition = Condition(sub.condition, list(spec.inputs))
        except ExpressionError as exc:
            errors.append(trigger.error(str(exc), f"{field}.condition"))
        subscriber_filter = compiled(sub.filter, field)
        if errors:
            continue
        subscribers.append(
            SubscriberPlan(
                index=index,
                condition=condition,
                filter=subscriber_filter,
                dead_letter_topic=sub.deadLetterTopic or dead_letter_topic(trigger),
                reply_topic=sub.replyTopic or reply_topic(trigger),
            )
        )
    if errors:
        raise ManifestErrors(errors)
    return TriggerPlan(
        label=f"{ns}/{trigger.name}",
        group=group_of(trigger),
        inputs={name: input_topic(ref, ns) for name, ref in spec.inputs.items()},
        input_filters=input_filters,
        subscribers=subscribers,
        dead_letter_topic=dead_letter_topic(trigger),
    )
