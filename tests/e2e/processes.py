"""Launching ``fnevents`` as real subprocesses for end-to-end tests and benches.

Two ways to run a long-lived command (``run``), both unbuffered:

- ``start``: output appended to a log file, in its own session so a kill reaches only
  it; ``stop`` ends it with SIGTERM (a graceful drain), SIGKILL if it hangs, and
  returns its exit status (``stopped`` from a coroutine, so sinks in the test keep
  answering). For a test that only needs the output when it fails.
- ``piped``: output on a pipe, read line by line with ``read_until``; ``finish`` ends
  it with SIGTERM and returns what it printed after the last read. For a test that
  waits on what the process says.

``call`` runs a short command (``deadletters ...``) to completion and returns its exit
status and output.

``ops_address`` reads, from a ``start``-ed process's log, where its ``--port 0`` ops
server listens; ``readiness`` asks its ``/readyz`` and ``scrape`` its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from events.brokers.redis.bus import RedisBus, RedisSettings
from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from tests.manifests import documents

ROOT = Path(__file__).resolve().parents[2]
FNEVENTS = [sys.executable, "-m", "events.cli.entry"]  # what the console script runs


def _environment(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **env}


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    """``fnevents ARGS`` in the background, appending stdout and stderr to ``log``;
    ``env`` is added to this process's environment."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [*FNEVENTS, *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_environment(env),
            start_new_session=True,
        )


def stop(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM (a graceful drain), then SIGKILL if it has not exited within ``timeout``;
    its exit status. Does nothing to a process that has already exited."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


async def stopped(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """``stop`` from a test's event loop, which goes on running meanwhile: a sink served
    in the test answers what the process still delivers while it drains."""
    return await asyncio.to_thread(stop, process, timeout)


def piped(*args: str, **env: str) -> subprocess.Popen[str]:
    """``fnevents ARGS`` in the background, its stdout and stderr on ``process.stdout``."""
    return subprocess.Popen(
        [*FNEVENTS, *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_environment(env),
    )


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 20) -> list[str]:
    """Lines of a ``piped`` process up to and including the first matching ``pattern``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r}; output so far:\n" + "\n".join(lines))


def finish(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """SIGTERM to a ``piped`` process (unless it has exited), then the rest of its output
    once it exits (its status is then ``process.returncode``); SIGKILL and re-raise if
    it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        rest, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return rest


@dataclass(frozen=True)
class Finished:
    status: int
    out: str
    err: str


async def call(args: list[str], timeout: float = 60.0) -> Finished:
    """``fnevents ARGS`` to completion, without blocking the caller's event loop (a sink
    served by the test keeps answering meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        *FNEVENTS,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


@dataclass(frozen=True)
class TriggerApp:
    """Manifests of one Trigger; names are unique per test, so topics and groups are."""

    manifest: Path
    trigger: str
    source: str

    @property
    def input_topic(self) -> str:
        return f"default-{self.source}-tick"

    @property
    def dead_letter_topic(self) -> str:
        return f"default-{self.trigger}-deadletter"


def trigger_on(
    directory: Path,
    bus_manifest: str,
    sink: str,
    retry: int = 1,
    max_in_flight: int = 64,
    backoff: str = "10ms",
) -> TriggerApp:
    """A Trigger on the bus of ``bus_manifest`` (``documents.bus(...)``) reading an hourly
    cron EventSource, delivering to ``sink`` with ``retry`` retries ``backoff`` apart
    (exponential); fresh names, written into ``directory``."""
    suffix = uuid.uuid4().hex[:8]
    app = TriggerApp(directory / f"app-{suffix}.yaml", f"t{suffix}", f"clock{suffix}")
    delivery = f"{{retry: {retry}, backoffDelay: {backoff}, timeout: 5s}}"
    app.manifest.write_text(
        bus_manifest
        + documents.hourly_trigger(
            app.trigger, sink, app.source, maxInFlight=max_in_flight, delivery=delivery
        )
    )
    return app


def trigger_on_redis(
    directory: Path, redis: str, sink: str, retry: int = 1, max_in_flight: int = 64
) -> TriggerApp:
    """A Trigger on a Redis bus (claim-back of a dead member's entries after 1s) reading
    an hourly cron EventSource, delivering to ``sink``; fresh names, written into
    ``directory``."""
    suffix = uuid.uuid4().hex[:8]
    app = TriggerApp(directory / "app.yaml", f"t{suffix}", f"clock{suffix}")
    delivery = f"{{retry: {retry}, backoffDelay: 10ms, timeout: 5s}}"
    app.manifest.write_text(
        documents.bus(
            "pubsub.redis", redisHost=redis, processingTimeout="1s", redeliverInterval="200ms"
        )
        + documents.hourly_trigger(
            app.trigger, sink, app.source, maxInFlight=max_in_flight, delivery=delivery
        )
    )
    return app


async def publish_ticks(redis: str, topic: str, total: int) -> set[str]:
    """``total`` events ``tick-0``... published concurrently on ``topic``; their ids."""
    async with RedisBus(RedisSettings(redisHost=redis)) as bus:
        events = [
            CloudEvent.create(type="dev.test.tick", source="/e2e", id=f"tick-{n}", data={"n": n})
            for n in range(total)
        ]
        await asyncio.gather(*(bus.publish(topic, event) for event in events))
    return {event.id for event in events}


async def publish_all(bus: EventBus, topic: str, ids: list[str]) -> set[str]:
    """Events with ``ids`` published concurrently on ``topic`` through ``bus``; the ids."""
    events = [
        CloudEvent.create(type="dev.test.tick", source="/e2e", id=i, data={"id": i}) for i in ids
    ]
    await asyncio.gather(*(bus.publish(topic, event) for event in events))
    return {event.id for event in events}


_OPS_LINE = re.compile(r"health and metrics on (http://\S+)/metrics")


def ops_address(log: Path, process: subprocess.Popen, after: int = 0, timeout: float = 30.0) -> str:
    """Where a ``start``-ed ``fnevents run --port 0`` serves /readyz and /metrics, read from
    the line it prints first (in ``log`` past offset ``after``: where this run's output
    begins, when several runs share the log); an AssertionError with the log if it never
    says."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _OPS_LINE.search(log.read_text(errors="replace")[after:])
        if found:
            return found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no ops address in the log:\n{log.read_text()[-3000:]}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def readiness(ops: str) -> tuple[int, str]:
    """``/readyz``'s status and body (503 says why: starting, stopping, stalled...)."""
    return await asyncio.to_thread(_get, f"{ops}/readyz")


async def scrape(ops: str) -> str:
    """The ``/metrics`` page."""
    return (await asyncio.to_thread(_get, f"{ops}/metrics"))[1]


def post(url: str, body: bytes | None = None) -> int:
    """POST ``body`` (JSON when given) to ``url``; the HTTP status."""
    headers = {"Content-Type": "application/json"} if body else {}
    request = urllib.request.Request(url, data=body or b"", headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status


def stop_cleanly(process: subprocess.Popen[str]) -> str:
    """``finish`` the process, which must exit 0; what it printed last."""
    rest = finish(process)
    assert process.returncode == 0, rest
    return rest


def listening_url(lines: list[str], function: str) -> str:
    """Where the sync Function ``default/<function>`` said it listens."""
    pattern = re.compile(rf"function default/{re.escape(function)} listening on (\S+)")
    for line in lines:
        if found := pattern.search(line):
            return found.group(1)
    raise AssertionError(f"{function} did not say where it listens:\n" + "\n".join(lines))
