"""Reload without restart, with real processes: ``fnevents run`` on a Redis bus while a
publisher puts numbered events on its source's topic, and its manifests change under it.

- a Trigger's sink changed on disk (a ConfigMap-style ``..data`` symlink swap) moves the
  stream from sink A to sink B: every accepted event arrives at A or B (duplicates,
  which at-least-once allows, are counted and reported), and none published after the
  reload reaches A;
- an invalid edit is reported, error by error, and the old configuration keeps
  delivering; with ``--no-reload`` an edit waits for SIGHUP;
- removing a Trigger stops it and leaves the other one running untouched.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from events.brokers.redis.bus import RedisBus, RedisSettings
from events.cloudevent import CloudEvent
from tests.e2e import processes
from tests.manifests import documents
from tests.sink import RecordingSink, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

#: a pause between two published events: about 200 a second
PUBLISH_EVERY = 0.005
#: how long the first sink takes per event, so some are in flight when its trigger restarts
SLOW_SINK = 0.05


class App:
    """Manifests with fresh names: a Redis bus, an hourly cron source (it never fires;
    the test publishes on its topic) and Triggers on it."""

    def __init__(self, redis: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.source = f"clock{suffix}"
        self.topic = f"default-{self.source}-tick"
        self.names = [f"t{suffix}", f"u{suffix}"]
        self.head = documents.bus(
            "pubsub.redis", redisHost=redis, processingTimeout="1s", redeliverInterval="200ms"
        ) + documents.hourly_source(self.source)

    def text(self, *sinks: str, broken: bool = False) -> str:
        """The manifests with one Trigger per sink (named ``self.names`` in order);
        ``broken`` adds two mistakes to the first."""
        triggers = [
            f"""\
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: {name}}}
spec:
  eventBus: default
  inputs: {{tick: {{eventSource: {self.source}, event: tick}}}}
  subscribers:
    - condition: tick
      sink: {{uri: "{"ftp://nowhere/" if broken and i == 0 else sink}"}}
      delivery: {{retry: 5, backoffDelay: 20ms, timeout: 5s}}
{"      colour: blue" if broken and i == 0 else ""}
"""
            for i, (name, sink) in enumerate(zip(self.names, sinks, strict=False))
        ]
        return self.head + "---\n".join(triggers)


class Publisher:
    """Numbered events on ``topic``, one every PUBLISH_EVERY, until stopped; ``ids`` are
    those Redis accepted, in order."""

    def __init__(self, redis: str, topic: str) -> None:
        self._bus = RedisBus(RedisSettings(redisHost=redis))
        self._topic = topic
        self.ids: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Publisher:
        await self._bus.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        for n in range(1_000_000):
            event = CloudEvent.create(type="dev.test.tick", source="/e2e", id=f"e-{n}", data={})
            await self._bus.publish(self._topic, event)
            self.ids.append(event.id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PUBLISH_EVERY)
                return

    async def stop(self) -> None:
        """Stop between publishes: a cancel in the middle of one could leave an event on
        the stream that ``ids`` does not list."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self._bus.close()


def tail(log: Path, size: int = 3000) -> str:
    return log.read_text(errors="replace")[-size:]


async def said(log: Path, process: subprocess.Popen, pattern: str, timeout: float = 15) -> str:
    """The first line of the log matching ``pattern``, waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(f".*{pattern}.*", tail(log, 1_000_000))
        if found:
            return found.group(0)
        assert process.poll() is None, f"fnevents exited:\n{tail(log)}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r}:\n{tail(log)}")


async def until(condition, what: str, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout}s:\n{tail(log)}"
        await asyncio.sleep(0.05)


def ids(sink: RecordingSink) -> set[str]:
    return {event.id for event in sink.accepted}


def configmap(mount: Path, version: int, text: str) -> None:
    """Write ``app.yaml`` as a Kubernetes ConfigMap volume does: a new ``..<version>``
    directory, then ``..data`` swapped to it in one rename (``app.yaml -> ..data/app.yaml``
    never changes)."""
    (mount / f"..{version}").mkdir(parents=True)
    (mount / f"..{version}" / "app.yaml").write_text(text)
    (mount / "..data_tmp").symlink_to(f"..{version}")
    os.replace(mount / "..data_tmp", mount / "..data")
    if not (mount / "app.yaml").is_symlink():
        (mount / "app.yaml").symlink_to("..data/app.yaml")


def run(manifest: Path, log: Path, *extra: str) -> subprocess.Popen:
    return processes.start(["run", "-f", str(manifest), "--port", "0", "-q", *extra], log)


async def test_a_new_sink_takes_over_under_load_and_nothing_is_lost(tmp_path, redis_broker) -> None:
    app, log, mount = App(redis_broker.address), tmp_path / "fnevents.log", tmp_path / "mount"
    slow = RecordingSink(lambda n: Reply(delay=SLOW_SINK))
    async with slow as a, RecordingSink() as b:
        configmap(mount, 1, app.text(a.url))
        process = run(mount / "app.yaml", log)
        try:
            await said(log, process, "running; press Ctrl-C")
            async with Publisher(redis_broker.address, app.topic) as publisher:
                await until(lambda: len(a.accepted) >= 50, "sink A took 50", log)
                configmap(mount, 2, app.text(b.url))
                in_flight = a.in_flight
                line = await said(log, process, r"reloaded \(manifest files changed\)")
                cut = len(publisher.ids)  # published from here on: after the old trigger stopped
                await until(lambda: len(b.accepted) >= 50, "sink B took 50", log)
                await publisher.stop()
                published = set(publisher.ids)
                await until(lambda: published <= ids(a) | ids(b), "everything arrived", log)
                late = set(publisher.ids[cut:])
        finally:
            status = await processes.stopped(process)
    assert status == 0, tail(log)
    assert line.endswith(f"restarted trigger/default/{app.names[0]}; 1 unchanged"), line
    assert not late & ids(a), "sink A took events published after the reload"
    delivered = collections.Counter(e.id for e in a.accepted + b.accepted)
    duplicates = sum(n - 1 for n in delivered.values())
    assert set(delivered) == published
    print(
        f"{in_flight} in flight at A at the edit; {len(published)} published, "
        f"{len(ids(a))} at A, {len(ids(b))} at B, 0 lost, {duplicates} duplicate deliveries"
    )


async def test_an_invalid_edit_keeps_the_old_configuration_until_sighup_applies_a_fix(
    tmp_path, redis_broker
) -> None:
    app, log, manifest = App(redis_broker.address), tmp_path / "fnevents.log", tmp_path / "a.yaml"
    async with RecordingSink() as a, RecordingSink() as b:
        manifest.write_text(app.text(a.url))
        process = run(manifest, log)
        try:
            await said(log, process, "running; press Ctrl-C")
            async with Publisher(redis_broker.address, app.topic) as publisher:
                await until(lambda: len(a.accepted) >= 20, "sink A took 20", log)
                manifest.write_text(app.text(b.url, broken=True))
                refused = await said(log, process, "the old configuration keeps running")
                taken = len(a.accepted)
                await until(lambda: len(a.accepted) >= taken + 50, "A goes on taking", log)

                process.send_signal(signal.SIGHUP)  # reload the same broken files
                await said(log, process, r"reload \(SIGHUP\): 2 error")
                before_fix = len(b.accepted)
                manifest.write_text(app.text(b.url))
                await until(lambda: len(b.accepted) >= 20, "sink B took 20", log)
                await publisher.stop()
                published = set(publisher.ids)
                await until(lambda: published <= ids(a) | ids(b), "everything arrived", log)
        finally:
            status = await processes.stopped(process)
    output = tail(log, 1_000_000)
    assert status == 0, output[-3000:]
    assert refused.startswith("reload (manifest files changed): 2 error(s)"), refused
    assert "expected an http:// or https:// URL, got 'ftp://nowhere/'" in output
    assert "colour" in output, "the unknown field is reported too"
    assert before_fix == 0, "B took nothing before the fix"


async def test_no_reload_waits_for_sighup_and_a_removed_trigger_stops(
    tmp_path, redis_broker
) -> None:
    app, log, manifest = App(redis_broker.address), tmp_path / "fnevents.log", tmp_path / "a.yaml"
    async with RecordingSink() as a, RecordingSink() as b:
        manifest.write_text(app.text(a.url, b.url))
        process = run(manifest, log, "--no-reload")
        try:
            await said(log, process, "running; press Ctrl-C")
            async with Publisher(redis_broker.address, app.topic) as publisher:
                await until(lambda: len(b.accepted) >= 20, "sink B took 20", log)
                manifest.write_text(app.text(a.url))  # the second trigger removed
                await asyncio.sleep(1.5)  # longer than a poll: --no-reload does not look
                assert "reloaded" not in tail(log)
                process.send_signal(signal.SIGHUP)
                line = await said(log, process, r"reloaded \(SIGHUP\)")
                cut, taken = len(publisher.ids), len(a.accepted)
                await until(lambda: len(a.accepted) >= taken + 50, "A goes on taking", log)
                await publisher.stop()
                published = set(publisher.ids)
                await until(lambda: published <= ids(a), "everything at A", log)
        finally:
            status = await processes.stopped(process)
    assert status == 0, tail(log)
    assert line.endswith(f"stopped trigger/default/{app.names[1]}; 2 unchanged"), line
    assert not set(publisher.ids[cut:]) & ids(b), "the removed trigger delivered nothing more"
    assert published <= ids(a)
