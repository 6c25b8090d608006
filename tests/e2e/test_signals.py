"""Stopping ``fnevents run`` as process managers do: repeated SIGTERM, SIGTERM while it is
still starting, a second Ctrl-C while draining, and a port that is already taken."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.processes import ROOT, read_until
from tests.sink import RecordingSink

pytestmark = pytest.mark.e2e

#: What the console script runs: signal handling first, then everything else.
ENTRY = [sys.executable, "-m", "events.cli.entry"]


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ENTRY, *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
    )


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_a_storm_of_sigterms_during_the_stop_still_exits_zero() -> None:
    """`timeout` and process managers that signal a whole group send SIGTERM twice or
    more; one landing after the event loop closed used to kill the process with 143."""
    process = spawn("run", "-f", "examples/quickstart", "--port", "0", "-q")
    read_until(process, r"running; press Ctrl-C")
    deadline = time.monotonic() + 10
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert output.rstrip().endswith("stopped")
    assert "Traceback" not in output


def test_sigterm_while_starting_starts_nothing_and_exits_zero() -> None:
    process = spawn("run", "-f", "examples/quickstart", "--port", "0")
    deadline = time.monotonic() + 20
    while not catches_sigterm(process.pid):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)  # the handler is there; the imports are not done
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "stopped before starting" in output
    assert "running" not in output and "Traceback" not in output


async def test_a_second_ctrl_c_while_draining_stops_at_once(tmp_path: Path) -> None:
    async with RecordingSink() as sink:
        sink.gate = asyncio.Event()  # requests hang until the sink closes
        manifest = tmp_path / "app.yaml"
        manifest.write_text(
            (ROOT / "examples/quickstart/eventsource.yaml").read_text()
            + "---\n"
            + (ROOT / "examples/quickstart/eventbus.yaml").read_text()
            + "---\n"
            + _trigger_to(sink.url)
        )
        process = spawn("run", "-f", str(manifest), "--port", "0", "--drain-timeout", "60")
        try:
            read_until(process, r"running; press Ctrl-C")
            await sink.wait_for_requests(1, timeout=20)  # a delivery is in flight, hanging
            process.send_signal(signal.SIGINT)
            read_until(process, r"stopping: draining")
            started = time.monotonic()
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=30)
            elapsed = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, output
    assert elapsed < 10, "it did not wait out the 60 s drain"
    assert "stopping now without draining" in output
    assert "Traceback" not in output


def _trigger_to(url: str) -> str:
    return (
        "apiVersion: events.openfunction.io/v1alpha1\nkind: Trigger\n"
        "metadata: {name: hangs}\nspec:\n  eventBus: default\n"
        "  inputs: {tick: {eventSource: clock, event: tick}}\n"
        f"  subscribers:\n  - condition: tick\n    sink: {{uri: '{url}'}}\n"
    )


def test_a_busy_ops_port_is_one_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = spawn("run", "-f", "examples/quickstart", "--port", str(port))
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 1, output
    assert f"port {port} is in use; pass --port N or --port 0" in output
    assert "Traceback" not in output
