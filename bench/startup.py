"""Start to "running" for the quickstart, against a bare aiohttp app start, in the same run.

ours: ``python -m events.cli.entry run -f examples/quickstart`` (what the ``fnevents``
console script runs) in a fresh process; the clock runs from just before the process is
spawned to the moment its ``running; press Ctrl-C to stop`` line is read from its output,
then the process is killed (SIGKILL: shutting down is not part of the figure).

reference: a fresh Python process that imports ``aiohttp.web``, starts an app with one
route on a free loopback port and prints ``running``: the least a process serving HTTP
with the same library pays. A third row, ``python -c pass``, is the interpreter's floor.

Each figure is the median of N runs (10; 5 with ``--quick``), the commands interleaved
after one warm-up run each (which also writes the bytecode caches). Ratio = ours / bare
aiohttp; lower is better. The whole-process figure covers interpreter start, imports,
loading the manifests, starting the bus, the function server, the trigger and the
source.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Table, progress, sized

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart"
TIMEOUT = 30.0
OURS = [sys.executable, "-m", "events.cli.entry", "run", "-f", str(QUICKSTART), "--port", "0"]
BARE_AIOHTTP = """\
import asyncio
from aiohttp import web

async def main():
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="ok"))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print("running", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""
BARE = [sys.executable, "-c", BARE_AIOHTTP]
#: Bytecode caches are written and used, as for a user: pip compiles an installed
#: package's, and an editable checkout writes its own on the first run (the warm-up).
#: With PYTHONDONTWRITEBYTECODE set, ours would compile its ~110 modules on every start
#: while aiohttp's came compiled from pip, and the ratio would measure the compiler.
CHILD_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONUNBUFFERED": "1",
}
FLOOR = [sys.executable, "-c", "print('running', flush=True)"]


def time_to_running(command: list[str]) -> float:
    """Seconds from spawning ``command`` to reading a line that contains ``running``."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=CHILD_ENV,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if b"running" in line:
                return time.perf_counter() - start
            if time.perf_counter() - start > TIMEOUT:
                break
        raise RuntimeError(f"{command[:4]} never said running")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()


def run(quick: bool = False) -> list[Table]:
    runs = sized(5 if quick else 10, 1)
    commands = {"ours": OURS, "bare": BARE, "floor": FLOOR}
    for command in commands.values():
        time_to_running(command)  # warm-up: bytecode caches, page cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    progress(f"startup: {runs} runs of each, interleaved")
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(time_to_running(command))
    median = {name: statistics.median(values) for name, values in times.items()}
    table = Table(
        f'startup: quickstart start to "running" vs a bare aiohttp app start '
        f"(whole process, median of {runs}; ratio = ours / bare aiohttp)",
        "fnevents",
        "bare aiohttp",
    )
    table.add(
        "start to running (lower is better)", "ms", median["ours"] * 1e3, median["bare"] * 1e3
    )
    table.add(
        "interpreter floor: python -c print (for scale; not a ratio to read)",
        "ms",
        median["floor"] * 1e3,
        median["bare"] * 1e3,
    )
    spread = {name: (min(v) * 1e3, max(v) * 1e3) for name, v in times.items()}
    table.notes.append(
        "min-max ms: "
        + ", ".join(f"{name} {low:.0f}-{high:.0f}" for name, (low, high) in spread.items())
    )
    return [table]


if __name__ == "__main__":
    for t in run("--quick" in sys.argv):
        print(t.render())
