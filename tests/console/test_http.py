"""The console's HTTP API on a real ``fnevents run --console`` (Redis bus, a cron
source every second, a Trigger whose sink answers 500): the topology, the live
stream, recent events, dead letters, and replay refused without the right token
(401) and done with it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.console.fleet import REDIS, TOKEN, Sink
from tests.e2e import processes

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

APP = """\
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata:
  name: default
spec:
  component: eventbus
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata:
  name: {source}
spec:
  eventBus: default
  cron:
    tick:
      schedule: "@every 1s"
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata:
  name: {trigger}
spec:
  eventBus: default
  inputs:
    tick:
      eventSource: {source}
      event: tick
  subscribers:
    - condition: tick
      sink:
        uri: {sink}
      delivery: {{retry: 0, timeout: 5s}}
"""


def request(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, headers=headers), timeout=60
        ) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def letters(base: str, topic: str) -> list[dict]:
    status, body = request(f"{base}/console/api/deadletters?topic={topic}")
    assert status == 200, body
    return json.loads(body)["letters"]


def run(tmp_path: Path, redis: str, sink: str, *extra: str):
    suffix = uuid.uuid4().hex[:8]
    source, trigger = f"clock{suffix}", f"t{suffix}"
    (tmp_path / "app.yaml").write_text(APP.format(source=source, trigger=trigger, sink=sink))
    (tmp_path / "redis.yaml").write_text(REDIS.format(address=redis))
    args = ["run", "-f", str(tmp_path / "app.yaml"), "--components", str(tmp_path / "redis.yaml")]
    log = tmp_path / "run.log"
    process = processes.start([*args, "--port", "0", "-q", "--console", *extra], log)
    return process, log, trigger


def test_replay_needs_the_token_and_works_with_it(tmp_path: Path, redis_broker) -> None:
    sink = Sink(500)
    process, log, trigger = run(tmp_path, redis_broker.address, sink.url, "--console-token", TOKEN)
    dead = f"default-{trigger}-deadletter"
    try:
        base = processes.ops_address(log, process)
        status, body = request(f"{base}/console/api/topology")
        topology = json.loads(body)
        ids = {node["id"] for node in topology["nodes"]}
        assert f"trigger:default/{trigger}" in ids and f"sink:{sink.url}" in ids
        assert dead in topology["letters"]
        found = wait_for(lambda: letters(base, dead), "a dead letter")
        assert found[0]["status"] == 500 or "500" in str(found[0]["reason"])
        for token in (None, "wrong"):
            status, body = request(f"{base}/console/api/deadletters/replay", {"topic": dead}, token)
            assert status == 401, body
        assert letters(base, dead), "a refused replay took nothing"
        sink.status = 200
        before = sink.received
        status, body = request(f"{base}/console/api/deadletters/replay", {"topic": dead}, TOKEN)
        assert status == 200, body
        report = json.loads(body)
        assert report["replayed"] >= 1 and report["failed"] == [], report
        assert sink.received > before
        recent = json.loads(
            request(f"{base}/console/api/recent?where=trigger:default/{trigger}")[1]
        )
        outcomes = {o["outcome"] for e in recent["events"] for o in e["outcomes"]}
        assert "dead-lettered" in outcomes
    finally:
        code = processes.stop(process)
        sink.close()
    assert code == 0, log.read_text()


def test_without_a_token_replay_is_off(tmp_path: Path, redis_broker) -> None:
    sink = Sink(500)
    process, log, trigger = run(tmp_path, redis_broker.address, sink.url)
    try:
        base = processes.ops_address(log, process)
        topic = f"default-{trigger}-deadletter"
        status, body = request(f"{base}/console/api/deadletters/replay", {"topic": topic}, "x")
        assert status == 401 and "started without --console-token" in body
        with urllib.request.urlopen(f"{base}/console/api/stream", timeout=10) as stream:
            line = stream.readline().decode()
        assert line.startswith("data: ")
        snapshot = json.loads(line.removeprefix("data: "))
        assert f"trigger:default/{trigger}" in snapshot["nodes"]
        status, page = request(f"{base}/console/")
        assert status == 200 and "console.js" in page
    finally:
        code = processes.stop(process)
        sink.close()
    assert code == 0, log.read_text()
