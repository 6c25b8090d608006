"""The console's figures, read from the same Prometheus registry ``/metrics`` serves.

Each tick takes one reading of the registry (every sample of every family, as a
scrape would) and keeps the last few readings, so an edge's rate is the counter's
increase over the last seconds, divided by the time between the readings: no second
bookkeeping on the hot path, and a cost per tick bounded by the number of series.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from events.app.console.topology import Series, Topology

#: metric family -> [(its labels, the sample's value)]
Reading = dict[str, list[tuple[frozenset[tuple[str, str]], float]]]


def read(registry: CollectorRegistry) -> Reading:
    """Every counter (its ``_total``) and gauge sample in ``registry``."""
    values: Reading = {}
    for family in registry.collect():
        if family.type not in ("counter", "gauge"):
            continue
        wanted = f"{family.name}_total" if family.type == "counter" else family.name
        values[family.name] = [
            (frozenset(s.labels.items()), s.value) for s in family.samples if s.name == wanted
        ]
    return values


def total(reading: Reading, found: Iterable[Series]) -> float:
    """The sum of every sample matching one of ``found`` (family, and labels included)."""
    result = 0.0
    for family, labels in found:
        wanted = set(labels)
        for sample_labels, value in reading.get(family, ()):
            if wanted <= sample_labels:
                result += value
    return result


class Rates:
    """Readings of the last ``window`` seconds; figures and rates from them."""

    def __init__(self, read_now: Callable[[], Reading], window: float = 3.0) -> None:
        self._read = read_now
        self._window = window
        self._readings: deque[tuple[float, Reading]] = deque()

    def tick(self) -> None:
        now = time.monotonic()
        self._readings.append((now, self._read()))
        while len(self._readings) > 2 and now - self._readings[0][0] > self._window:
            self._readings.popleft()

    def snapshot(
        self, graph: Topology, in_flight: Mapping[str, int], last_errors: Mapping[str, str]
    ) -> dict[str, Any]:
        """Per node its figures, per edge its events/s (None without a counter)."""
        if not self._readings:
            self.tick()
        first_at, first = self._readings[0]
        now_at, now = self._readings[-1]
        elapsed = now_at - first_at
        nodes: dict[str, dict[str, Any]] = {}
        for node in graph.nodes.values():
            figures: dict[str, Any] = {k: total(now, v) for k, v in node.stats.items()}
            for name, (plus, minus) in node.differences.items():
                figures[name] = max(0.0, figures.get(plus, 0.0) - figures.get(minus, 0.0))
            if node.subscribers:
                figures["in flight"] = sum(in_flight.get(s, 0) for s in node.subscribers)
                errors = [last_errors[s] for s in node.subscribers if s in last_errors]
                if errors:
                    figures["last error"] = errors[0]
            nodes[node.id] = figures
        edges: dict[str, float | None] = {}
        for edge in graph.edges.values():
            if not edge.rate:
                edges[edge.id] = None
            elif elapsed <= 0:
                edges[edge.id] = 0.0
            else:
                increase = total(now, edge.rate) - total(first, edge.rate)
                edges[edge.id] = round(max(0.0, increase) / elapsed, 2)
        return {"nodes": nodes, "edges": edges}
