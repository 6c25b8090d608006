"""The README's quickstart as a user runs it: a real `fnevents run` subprocess."""

from __future__ import annotations

import re
import signal
import urllib.request

import pytest

from tests.e2e import processes
from tests.e2e.processes import piped, read_until

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_quickstart_delivers_serves_metrics_and_drains_on_sigterm() -> None:
    process = piped("run", "-f", "examples/quickstart", "--port", "0")
    try:
        startup = read_until(process, r"health and metrics on")
        ops = re.search(r"(http://\S+)/metrics", startup[-1]).group(1)
        lines = read_until(process, r"delivered\s+default/hello-trigger#0")
        assert any(line.startswith("hello: dev.fnevents.cron.fired") for line in lines)
        assert get(f"{ops}/healthz") == (200, "ok\n")
        assert get(f"{ops}/readyz") == (200, "ready\n")
        status, metrics = get(f"{ops}/metrics")
        assert status == 200
        delivered = re.search(
            r'fnevents_delivered_events_total\{subscriber="0",trigger="default/hello-trigger"\} '
            r"(\S+)",
            metrics,
        )
        assert delivered and float(delivered.group(1)) >= 1
        assert 'fnevents_published_events_total{source="default/clock/tick"}' in metrics
        assert "fnevents_delivery_latency_seconds_bucket" in metrics
    finally:
        rest = processes.finish(process)
    assert process.returncode == 0, rest
    assert rest.rstrip().endswith("stopped")


def test_ctrl_c_exits_zero() -> None:
    process = piped("run", "-f", "examples/quickstart", "--port", "0")
    read_until(process, r"running; press Ctrl-C")
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Traceback" not in output


def test_an_unreachable_bus_is_one_clear_message_and_ctrl_c_still_works() -> None:
    # OpenFunction's own fixtures: their EventBus is NATS at nats.default:4222, which
    # does not resolve here.
    process = piped("run", "-f", "tests/fixtures/openfunction", "--port", "0")
    try:
        lines = read_until(process, r"error: bus pubsub.jetstream at nats://nats.default:4222")
        assert any("NATS Streaming is end-of-life" in line for line in lines)
        rest = processes.finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in rest
    assert rest.count("error: bus pubsub.jetstream") == 0, "one message, not one per retry"
