"""Plain fixed-width tables and progress lines shared by the benchmarks.

Every row compares *ours* with a *reference* measured in the same run, so the
ratio column is the figure to read: absolute numbers move with the machine's load.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TypeVar

_START = time.perf_counter()
_Size = TypeVar("_Size", int, float)

#: ``FNEVENTS_BENCH_SMOKE=1``: every benchmark runs with a handful of events, so a test
#: (tests/bench) can check that each still runs and prints its tables; such a run's
#: figures mean nothing.
SMOKE = os.environ.get("FNEVENTS_BENCH_SMOKE") == "1"


def sized(size: _Size, smoke: _Size) -> _Size:
    """``size``, or ``smoke`` in a smoke run (see :data:`SMOKE`)."""
    return smoke if SMOKE else size


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the tables)."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an already sorted list, nearest rank."""
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Row:
    benchmark: str
    unit: str
    ours: float
    reference: float

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else float("nan")


@dataclass
class Table:
    title: str
    ours_label: str
    reference_label: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, benchmark: str, unit: str, ours: float, reference: float) -> None:
        self.rows.append(Row(benchmark, unit, ours, reference))

    def add_latency(
        self, where: str, ours: list[float], reference: list[float], unit: str = "µs"
    ) -> None:
        """p50 and p99 rows, in microseconds, of two sorted lists of seconds; ``where``
        completes "p50 latency ..." (e.g. "at 1,000 ev/s")."""
        for label, q in (("p50", 0.50), ("p99", 0.99)):
            self.add(
                f"{label} latency {where} (lower is better)",
                unit,
                percentile(ours, q) * 1e6,
                percentile(reference, q) * 1e6,
            )

    def render(self) -> str:
        header = ["benchmark", "unit", self.ours_label, self.reference_label, "ratio"]
        body = [
            [r.benchmark, r.unit, _number(r.ours), _number(r.reference), _ratio(r.ratio)]
            for r in self.rows
        ]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        numeric = {2, 3, 4}

        def line(cells: list[str]) -> str:
            padded = [
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "| " + " | ".join(padded) + " |"

        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        out = [self.title, "", line(header), rule, *(line(b) for b in body)]
        out.extend(f"  {note}" for note in self.notes)
        return "\n".join(out)


def _number(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float) -> str:
    if value != value:
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"
