"""The graph the console draws, computed from the loaded catalog.

Nodes are sources (one per EventSource event), bus topics, triggers, subscribers,
functions, sinks (URLs that are not Functions of these manifests), bindings and
dead-letter topics. Each node and edge names the Prometheus series (metric family and
labels) its figures come from, so the console reads exactly what ``/metrics`` serves
(:mod:`events.app.console.stats`). An edge without series has no counter behind it
(an async function's input, a function's output) and shows no rate.

Names (topics, groups, dead-letter topics) come from :mod:`events.app.plans`, the
same functions the runtime uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from events.app.catalog import Catalog
from events.app.plans import bus_plan, dead_letter_topic, plan_trigger, topic_for
from events.manifests.common import SinkSpec
from events.manifests.loader import Loaded

#: (metric family, ((label, value), ...)): every sample of the family whose labels
#: include these is summed.
Series = tuple[str, tuple[tuple[str, str], ...]]


def series(metric: str, **labels: str) -> Series:
    return (f"fnevents_{metric}", tuple(sorted(labels.items())))


@dataclass
class Node:
    id: str
    kind: str  # source, topic, trigger, subscriber, function, sink, binding, deadletter
    label: str
    detail: str = ""
    #: figure name -> the series summed for it ("errors", "retries", "dead letters", ...)
    stats: dict[str, list[Series]] = field(default_factory=dict)
    #: figures computed from others: name -> (minuend, subtrahend)
    differences: dict[str, tuple[str, str]] = field(default_factory=dict)
    subscribers: list[str] = field(default_factory=list)  # labels whose in-flight count is ours
    rank: int = 0

    def add(self, figure: str, *found: Series) -> None:
        self.stats.setdefault(figure, []).extend(found)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "detail": self.detail,
            "rank": self.rank,
        }


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    rate: list[Series] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.source,
            "to": self.target,
            "label": self.label,
            "counted": bool(self.rate),
        }


@dataclass
class Topology:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)
    #: dead-letter topic -> (namespace, EventBus name) it is on, to list and replay it
    letters: dict[str, tuple[str, str]] = field(default_factory=dict)

    def node(self, node_id: str, kind: str, label: str, detail: str = "") -> Node:
        found = self.nodes.get(node_id)
        if found is None:
            found = self.nodes[node_id] = Node(node_id, kind, label, detail)
        return found

    def edge(self, source: str, target: str, label: str = "", *rate: Series) -> Edge:
        found = self.edges.get(f"{source}->{target}")
        if found is None:
            found = Edge(source, target, label)
            self.edges[found.id] = found
        found.rate.extend(rate)
        return found

    def public(self) -> dict[str, Any]:
        return {
            "nodes": [n.public() for n in self.nodes.values()],
            "edges": [e.public() for e in self.edges.values()],
        }


def build(catalog: Catalog) -> Topology:
    """The graph of everything in ``catalog`` (not only the roles this process runs:
    the figures of roles run elsewhere stay at zero)."""
    graph = Topology()
    for item in catalog.of_kind("Function"):
        _function(graph, item, catalog)
    for item in catalog.of_kind("EventSource"):
        _eventsource(graph, item, catalog)
    for item in catalog.of_kind("Trigger"):
        _trigger(graph, item, catalog)
    _rank(graph)
    return graph


def _topic(graph: Topology, name: str, catalog: Catalog, namespace: str, bus: str) -> str:
    node = graph.node(f"topic:{name}", "topic", name, _bus(catalog, namespace, bus))
    node.stats.setdefault("backlog", [series("backlog", topic=name)])
    return node.id


def _dead_letters(graph: Topology, name: str, catalog: Catalog, namespace: str, bus: str) -> Node:
    graph.letters.setdefault(name, (namespace, bus))
    return graph.node(f"topic:{name}", "deadletter", name, _bus(catalog, namespace, bus))


def _bus(catalog: Catalog, namespace: str, name: str | None) -> str:
    if not name:
        return ""
    try:
        return f"bus {name}: {bus_plan(catalog, namespace, name).describe()}"
    except KeyError:
        return f"bus {name} (not found)"


def _function(graph: Topology, item: Loaded, catalog: Catalog) -> None:
    spec = item.resource.spec
    node = graph.node(
        _function_id(item.namespace, item.name),
        "function",
        item.name,
        f"{spec.source}:{spec.target}",
    )
    if spec.input is not None:
        bus = spec.input.eventBus
        graph.edge(_topic(graph, spec.input.topic, catalog, item.namespace, bus), node.id)
        dead = _dead_letters(graph, dead_letter_topic(item), catalog, item.namespace, bus)
        graph.edge(node.id, dead.id, "dead letters")
    for name, ref in spec.outputs.items():
        if ref.component is None:
            graph.edge(node.id, _topic(graph, ref.topic, catalog, item.namespace, ref.bus), name)
        else:
            binding = graph.node(f"binding:{ref.component}", "binding", ref.component, "binding")
            graph.edge(node.id, binding.id, name)


def _function_id(namespace: str, name: str) -> str:
    return f"function:{namespace}/{name}"


def _eventsource(graph: Topology, item: Loaded, catalog: Catalog) -> None:
    spec, ns = item.resource.spec, item.namespace
    for kind, event, _ in spec.events():
        label = f"{ns}/{item.name}/{event}"
        node = graph.node(f"source:{label}", "source", f"{item.name}/{event}", kind)
        node.add("events", series("source_events", source=label))
        node.add("errors", series("source_errors", source=label))
        node.add("dead letters", series("source_rejected", source=label))
        if spec.eventBus:
            topic = _topic(graph, topic_for(ns, item.name, event), catalog, ns, spec.eventBus)
            graph.edge(node.id, topic, kind, series("published_events", source=label))
            dead = _dead_letters(graph, dead_letter_topic(item), catalog, ns, spec.eventBus)
            graph.edge(node.id, dead.id, "rejected", series("source_rejected", source=label))
            dead.add("letters", series("source_rejected", source=label))
        if spec.sink:
            target = _sink(graph, spec.sink, ns, catalog)
            rate = [] if spec.eventBus else [series("source_events", source=label)]
            graph.edge(node.id, target.id, "sink", *rate)


def _sink(graph: Topology, sink: SinkSpec, namespace: str, catalog: Catalog) -> Node:
    if sink.ref is not None:
        function = catalog.find_function(sink.ref, namespace)
        if function is not None:
            return graph.nodes.get(_function_id(function.namespace, function.name)) or graph.node(
                _function_id(function.namespace, function.name), "function", function.name
            )
    return graph.node(f"sink:{sink.describe()}", "sink", sink.describe(), "HTTP sink")


def _trigger(graph: Topology, item: Loaded, catalog: Catalog) -> None:
    spec, ns = item.resource.spec, item.namespace
    plan = plan_trigger(item)
    trigger = graph.node(f"trigger:{plan.label}", "trigger", item.name, f"group {plan.group}")
    trigger.add("events", series("trigger_events", trigger=plan.label))
    trigger.add("filtered", series("filtered_events", trigger=plan.label))
    trigger.add("filter errors", series("filter_errors", trigger=plan.label))
    for name, topic in plan.inputs.items():
        source = _topic(graph, topic, catalog, ns, spec.eventBus)
        where = f"input {name}"
        if name in plan.input_filters:
            where += f" [{plan.input_filters[name].description}]"
        graph.edge(
            source, trigger.id, where, series("trigger_events", trigger=plan.label, input=name)
        )
    for sub, compiled in zip(spec.subscribers, plan.subscribers, strict=True):
        _subscriber(graph, trigger, item, sub, compiled, catalog)


def _subscriber(graph, trigger: Node, item: Loaded, sub, compiled, catalog: Catalog) -> None:
    ns, label = item.namespace, trigger.id.removeprefix("trigger:")
    labels = {"trigger": label, "subscriber": str(compiled.index)}
    delivered = series("delivered_events", **labels)
    failed = series("failed_delivery_attempts", **labels)
    dead = series("dead_lettered_events", **labels)
    detail = f"when [{sub.condition}]"
    if compiled.filter is not None:
        detail += f" filter [{compiled.filter.description}]"
    node = graph.node(
        f"subscriber:{label}#{compiled.index}", "subscriber", f"#{compiled.index}", detail
    )
    node.add("delivered", delivered)
    node.add("errors", failed)
    node.add("dead letters", dead)
    node.differences["retries"] = ("errors", "dead letters")
    node.subscribers.append(f"{label}#{compiled.index}")
    graph.edge(trigger.id, node.id, "", delivered, dead)
    bus = item.resource.spec.eventBus
    if sub.topic:
        graph.edge(node.id, _topic(graph, sub.topic, catalog, ns, bus), "topic", delivered)
    if sub.sink:
        target = _sink(graph, sub.sink, ns, catalog)
        target.add("errors", failed)
        target.add("dead letters", dead)
        target.differences["retries"] = ("errors", "dead letters")
        target.subscribers.append(f"{label}#{compiled.index}")
        graph.edge(node.id, target.id, "sink", delivered)
        if sub.deadLetterSink:
            letters = _sink(graph, sub.deadLetterSink, ns, catalog)
        else:
            letters = _dead_letters(graph, compiled.dead_letter_topic, catalog, ns, bus)
            letters.add("letters", dead)
        graph.edge(node.id, letters.id, "dead letters", dead)


def _rank(graph: Topology) -> None:
    """Each node's column: the longest path to it from a node nothing points at (a
    cycle, e.g. a function feeding its own trigger, is cut where it closes)."""
    incoming: dict[str, list[str]] = {node: [] for node in graph.nodes}
    for edge in graph.edges.values():
        incoming[edge.target].append(edge.source)
    ranks: dict[str, int] = {}

    def rank(node: str, visiting: frozenset[str]) -> int:
        if node in ranks:
            return ranks[node]
        before = [rank(s, visiting | {node}) + 1 for s in incoming[node] if s not in visiting]
        ranks[node] = max(before, default=0)
        return ranks[node]

    for node_id, node in graph.nodes.items():
        node.rank = rank(node_id, frozenset())
