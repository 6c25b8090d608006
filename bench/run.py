"""Run the benchmarks and print their tables.

    python -m bench.run              # everything, about a minute
    python -m bench.run --quick      # smaller runs, under 15 s
    python -m bench.run --only codec # one benchmark (pipeline, codec)

Tables go to stdout, progress lines to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

from bench import codec, pipeline
from bench.report import Table, progress

BENCHMARKS: dict[str, Callable[[bool], list[Table]]] = {
    "pipeline": pipeline.run,
    "codec": codec.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (under 15 s)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    args = parser.parse_args(argv)

    names = [args.only] if args.only else list(BENCHMARKS)
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
