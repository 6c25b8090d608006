"""Run the benchmarks and print their tables.

    python -m bench.run                  # the core: pipeline and codec, under a minute
    python -m bench.run --brokers        # plus every broker backend (starts its own brokers)
    python -m bench.run --quick          # smaller runs
    python -m bench.run --only redis     # one benchmark

Tables go to stdout, progress lines to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform
import sys
import time
from collections.abc import Callable

from bench import codec, filters, pipeline
from bench.report import Table, progress


def _broker(module: str) -> Callable[[bool], list[Table]]:
    """A broker benchmark, imported when run (each starts its own broker)."""

    def run(quick: bool) -> list[Table]:
        result = importlib.import_module(f"bench.{module}").run(quick)
        return asyncio.run(result) if asyncio.iscoroutine(result) else result

    return run


CORE: dict[str, Callable[[bool], list[Table]]] = {
    "pipeline": pipeline.run,
    "codec": codec.run,
    "filters": filters.run,
}
BROKERS: dict[str, Callable[[bool], list[Table]]] = {
    "redis": _broker("redis_bus"),
    "kafka": _broker("kafka_bus"),
    "jetstream": _broker("jetstream_bus"),
    "mqtt": _broker("mqtt_bus"),
    "mqtt_source": _broker("mqtt_source"),
    "http_ingest": _broker("http_ingest"),
    "startup": _broker("startup"),  # no broker: the quickstart's start to "running"
    "trigger_http": _broker("trigger_http"),  # no broker: it starts a function server process
    "redis_cel_http": _broker("redis_cel_http"),  # Redis -> trigger + CEL filter -> HTTP sink
    # no broker: tracing and the console, off vs on vs without the hooks
    "observability": _broker("observability"),
}
#: Run only when named with --only (each takes minutes).
LONG: dict[str, Callable[[bool], list[Table]]] = {
    "long_run": _broker("long_run"),  # 1,000,000 events: RSS of Redis -> trigger -> HTTP sink
}
BENCHMARKS = {**CORE, **BROKERS, **LONG}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument(
        "--brokers",
        action="store_true",
        help="also benchmark every broker backend against its raw client",
    )
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    args = parser.parse_args(argv)

    names = [args.only] if args.only else [*CORE, *(BROKERS if args.brokers else ())]
    start = time.perf_counter()
    tables: list[Table] = []
    for name in names:
        progress(f"{name}: start")
        tables.extend(BENCHMARKS[name](args.quick))
    elapsed = time.perf_counter() - start
    progress(f"done in {elapsed:.1f}s")

    print(
        f"fnevents benchmarks ({'quick' if args.quick else 'full'} run, {elapsed:.0f} s; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs). "
        f"Ratios compare against a reference measured in the same run."
    )
    for table in tables:
        print()
        print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
