"""Hosted functions end to end: async functions on a topic, outputs, failures."""

from __future__ import annotations

import asyncio
import io
import textwrap
from pathlib import Path

from events.cli import load_catalog
from events.cloudevent import CloudEvent
from events.console import Console
from events.runtime import Runtime

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
    assert "gave up after 2 deliveries" in letter.extensions["fnerrorreason"]
