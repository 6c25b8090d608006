"""Launching ``fnevents`` as real subprocesses for end-to-end tests.

``start`` runs a long-lived command (``run``) with its output in a log file, in its own
session so a kill reaches only it; ``stop`` ends it with SIGTERM (SIGKILL if it hangs);
``call`` runs a short command (``deadletters ...``) to completion and returns its exit
status and output. (``test_redis_source_faults.py`` has an older copy of start/stop
written for ``run`` alone.)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from events.bus.redis import RedisBus, RedisSettings
from events.cloudevent import CloudEvent

ROOT = Path(__file__).resolve().parents[2]
FNEVENTS = [sys.executable, "-m", "events.cli"]


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``fnevents ARGS`` in the background, appending stdout and stderr to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [*FNEVENTS, *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM (a graceful drain), then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


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


#: A Trigger on a Redis bus reading EventSource ``{source}``'s ``tick`` (cron, hourly, so
#: it never fires during a test: the test publishes onto ``default-{source}-tick`` itself)
#: and delivering to ``sink``.
TRIGGER_ON_REDIS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: eventbus}}
spec:
  type: pubsub.redis
  metadata:
    - {{name: redisHost, value: "{redis}"}}
    - {{name: processingTimeout, value: "1s"}}
    - {{name: redeliverInterval, value: "200ms"}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {{name: default}}
spec: {{component: eventbus}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: {source}}}
spec:
  eventBus: default
  cron: {{tick: {{schedule: "@every 1h"}}}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: {trigger}}}
spec:
  eventBus: default
  inputs: {{tick: {{eventSource: {source}, event: tick}}}}
  subscribers:
    - condition: tick
      sink: {{uri: "{sink}"}}
      maxInFlight: {max_in_flight}
      delivery: {{retry: {retry}, backoffDelay: 10ms, timeout: 5s}}
"""


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


def trigger_on_redis(
    directory: Path, redis: str, sink: str, retry: int = 1, max_in_flight: int = 64
) -> TriggerApp:
    """Write :data:`TRIGGER_ON_REDIS` with fresh names into ``directory``."""
    suffix = uuid.uuid4().hex[:8]
    app = TriggerApp(directory / "app.yaml", f"t{suffix}", f"clock{suffix}")
    text = TRIGGER_ON_REDIS.format(
        redis=redis,
        trigger=app.trigger,
        source=app.source,
        sink=sink,
        retry=retry,
        max_in_flight=max_in_flight,
    )
    app.manifest.write_text(text)
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
