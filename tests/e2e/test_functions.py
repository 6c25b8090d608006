"""Hosted functions end to end: async functions on a topic, outputs, failures, and a
sync function reached from another process (`--only`)."""

from __future__ import annotations

import asyncio
import io
import shutil
import textwrap
from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.cloudevent import CloudEvent
from events.observability.console import Console
from tests.brokers.servers import free_port
from tests.e2e import processes
from tests.e2e.processes import ROOT, piped, read_until

FUNCTIONS = '''
import threading

calls = {"flaky": 0}
lock = threading.Lock()


def enrich(context, event):
    """Sync (runs in a thread), sends an output."""
    data = event.get_data()
    context.send("enriched", {"n": data["n"], "double": data["n"] * 2})


async def flaky(context, event):
    with lock:
        calls["flaky"] += 1
        attempt = calls["flaky"]
    if attempt <= 2:
        raise RuntimeError(f"flaky failure {attempt}")
    context.send("done", {"after": attempt})


def broken(event):
    raise ValueError("this event can never be processed")
'''

MANIFESTS = """
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {name: default}
---
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {name: enrich}
spec:
  source: functions.py
  target: enrich
  input: {topic: numbers}
  outputs:
    enriched: {topic: numbers-enriched}
---
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {name: flaky}
spec:
  source: functions.py
  target: flaky
  input: {topic: flaky-in}
  outputs:
    done: {topic: flaky-done}
---
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {name: broken}
spec:
  source: functions.py
  target: broken
  input: {topic: broken-in}
  maxDeliveries: 2
"""


async def started(tmp_path: Path) -> Runtime:
    (tmp_path / "functions.py").write_text(textwrap.dedent(FUNCTIONS))
    (tmp_path / "app.yaml").write_text(MANIFESTS)
    runtime = Runtime(load_catalog([str(tmp_path)], []), Console(stream=io.StringIO()))
    await runtime.start()
    return runtime


async def take(subscription, count: int) -> list[CloudEvent]:
    events = []
    async with asyncio.timeout(15):
        while len(events) < count:
            message = await anext(subscription)
            await message.ack()
            events.append(message.event)
    return events


async def test_an_async_function_consumes_a_topic_and_sends_outputs(tmp_path) -> None:
    runtime = await started(tmp_path)
    try:
        bus = next(iter(runtime.buses.values()))
        out = await bus.subscribe("numbers-enriched", "test")
        for n in range(10):
            await bus.publish("numbers", CloudEvent.create("num", "/t", {"n": n}))
        got = await take(out, 10)
    finally:
        await runtime.stop()
    assert sorted(e.data["double"] for e in got) == [n * 2 for n in range(10)]
    assert {e.type for e in got} == {"dev.fnevents.function.output"}
    assert {e.source for e in got} == {"/functions/default/enrich"}
    assert {e.subject for e in got} == {"enriched"}


async def test_a_failing_function_is_retried_until_it_succeeds(tmp_path) -> None:
    runtime = await started(tmp_path)
    try:
        bus = next(iter(runtime.buses.values()))
        out = await bus.subscribe("flaky-done", "test")
        await bus.publish("flaky-in", CloudEvent.create("job", "/t", {"job": 1}))
        (done,) = await take(out, 1)
    finally:
        await runtime.stop()
    assert done.data == {"after": 3}


async def test_an_event_that_always_fails_ends_in_the_functions_dead_letter(tmp_path) -> None:
    runtime = await started(tmp_path)
    try:
        bus = next(iter(runtime.buses.values()))
        dead = await bus.subscribe("default-broken-deadletter", "test")
        await bus.publish("broken-in", CloudEvent.create("job", "/t", {"job": 1}, id="doomed"))
        (letter,) = await take(dead, 1)
    finally:
        await runtime.stop()
    assert letter.id == "doomed"
    assert letter.extensions["fnerrorattempts"] == 2
    reason = letter.extensions["fnerrorreason"]
    assert "failed on the last of 2 deliveries" in reason
    assert "ValueError: this event can never be processed" in reason, "the function's own error"


def quickstart_copy(tmp_path: Path, port: int) -> Path:
    folder = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", folder)
    manifest = folder / "function.yaml"
    manifest.write_text(manifest.read_text() + f"  port: {port}\n")
    return folder


@pytest.mark.e2e
def test_a_sink_ref_reaches_a_function_running_in_another_process(tmp_path) -> None:
    port = free_port()
    folder = quickstart_copy(tmp_path, port)
    function = piped("run", "-f", str(folder), "--port", "0", "--only", "function/hello")
    rest = None
    try:
        read_until(function, rf"function default/hello listening on http://127.0.0.1:{port}/")
        read_until(function, r"running; press Ctrl-C")
        only = ("--only", "source/clock", "--only", "trigger/hello-trigger")
        rest = piped("run", "-f", str(folder), "--port", "0", *only)
        lines = read_until(
            rest, rf"delivered\s+default/hello-trigger#0 -> http://127.0.0.1:{port}/"
        )
        assert not any("function default/hello" in line for line in lines)
        read_until(function, r"^hello: dev.fnevents.cron.fired")
    finally:
        for process in (rest, function):
            if process is not None:
                processes.finish(process)
    assert function.returncode == 0 and rest is not None and rest.returncode == 0


@pytest.mark.e2e
def test_a_function_elsewhere_with_port_0_is_a_clear_error_at_start(tmp_path) -> None:
    only = ("--only", "trigger/hello-trigger")
    process = piped("run", "-f", "examples/quickstart", "--port", "0", *only)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1, output
    assert (
        "error: Function default/hello (examples/quickstart/function.yaml, document 1) " in output
    )
    assert "give it a fixed 'port'" in output
    assert "Traceback" not in output
