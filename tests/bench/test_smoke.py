"""Every benchmark still runs and prints its tables.

``python -m bench.run --brokers --quick`` in smoke mode (``FNEVENTS_BENCH_SMOKE=1``: a
handful of events each, see :data:`bench.report.SMOKE`), as a real subprocess with its
own brokers. The figures of such a run mean nothing and are not judged here:
performance is measured in bench/, never asserted in tests. What is checked is that
each benchmark finishes and that every row has a number on both sides. A benchmark
that keeps a copy of an internal the code has since changed (bench/observability.py
did once, and then spun for ever) fails here instead of at the next measurement.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from bench.run import BROKERS, CORE

ROOT = Path(__file__).resolve().parents[2]
#: The smoke run takes about 20 s here, most of it Kafka group joins (Tansu delays
#: each); the bound is for a machine several times slower, not for a hang to finish.
BOUND_SECONDS = 300


def _rows(tables: str) -> list[list[str]]:
    """The cells of every data row of the rendered tables."""
    rows = []
    for line in tables.splitlines():
        if not line.startswith("| ") or line.startswith("| benchmark "):
            continue
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_every_benchmark_runs_and_prints_numbers_on_both_sides() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--brokers", "--quick"],
        cwd=ROOT,
        env={**os.environ, "FNEVENTS_BENCH_SMOKE": "1"},
        capture_output=True,
        text=True,
        timeout=BOUND_SECONDS,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    started = {name for name in [*CORE, *BROKERS] if f"] {name}: start" in result.stderr}
    assert started == {*CORE, *BROKERS}, result.stderr[-4000:]
    assert "] done in " in result.stderr
    rows = _rows(result.stdout)
    assert len(rows) >= 3 * len(started), result.stdout  # every benchmark prints rows
    for benchmark, _unit, ours, reference, ratio in rows:
        values = (_number(ours), _number(reference), _number(ratio))
        assert all(math.isfinite(v) and v > 0 for v in values), (benchmark, values)
