"""What every fault test does the same way: run ``fnevents run`` as a real process with a
Trigger that delivers to a real HTTP sink, break something, and count.

- :data:`BUSES`: per backend, the component metadata the process and the test's own
  publishing bus share (short ``ackWait`` / ``processingTimeout`` / session timeout, so
  what a dead member held comes back in seconds).
- :class:`TriggerProcess`: one ``fnevents run --port 0 --stall-after STALL_AFTER``;
  ``check`` fails the test at once, with the reason and the log, when the process has
  exited or its ``/readyz`` says it stalled (no progress while work waits on the
  broker), instead of letting the test run into a silent timeout.
- :func:`settle`: wait until every accepted id reached the sink, then until quiescence
  (nothing new at the sink for ``QUIET`` seconds and a backlog of 0 on the broker, read
  from the process's ``fnevents_backlog`` gauge), so late redeliveries are counted too.
- :class:`Tally`: accepted ids against received ids: lost (asserted 0 by the tests) and
  duplicates (printed: what at least once cost).
"""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from events.bus.contract import EventBus
from tests.bus.backends import bus_on
from tests.e2e import processes
from tests.manifests import documents
from tests.sink import RecordingSink

#: ``--stall-after`` of every process: longer than any pause a fault legitimately causes
#: here (a broker restart and the first backoff steps take 1-3 s), far shorter than the
#: timeouts, so a stuck process fails the test in seconds with /readyz's reason.
STALL_AFTER = 10
#: Quiescence: no new delivery at the sink for this long, and nothing left on the broker.
QUIET = 2.0
#: Longest wait for everything to arrive, and then for quiescence.
DELIVERY_TIMEOUT = 90.0
QUIESCENCE_TIMEOUT = 30.0


@dataclass(frozen=True)
class BusSetup:
    component_type: str
    metadata: Callable[[str], dict[str, str]]  # broker address -> component metadata

    def manifest(self, address: str) -> str:
        return documents.bus(self.component_type, **self.metadata(address))

    def bus(self, address: str) -> EventBus:
        """A bus of the test's own on the same component (not started)."""
        return bus_on(self.component_type, self.metadata(address), pubsub_name="eventbus")


BUSES = {
    "redis": BusSetup(
        "pubsub.redis",
        lambda a: {"redisHost": a, "processingTimeout": "1s", "redeliverInterval": "200ms"},
    ),
    "kafka": BusSetup(
        "pubsub.kafka",
        lambda a: {"brokers": a, "sessionTimeout": "2s", "heartbeatInterval": "500ms"},
    ),
    "jetstream": BusSetup(
        "pubsub.jetstream", lambda a: {"natsURL": f"nats://{a}", "ackWait": "2s"}
    ),
}


def group_of(app: processes.TriggerApp) -> str:
    """The consumer group a Trigger reads its inputs as."""
    return f"default-{app.trigger}"


class TriggerProcess:
    """``fnevents run`` of ``app``, started again after each kill, one log for all runs."""

    def __init__(self, app: processes.TriggerApp, log: Path) -> None:
        self.app, self.log = app, log
        self.process: subprocess.Popen[bytes] | None = None
        self.ops = ""
        self._last_check = 0.0

    async def start(self) -> None:
        args = ["run", "-f", str(self.app.manifest), "--port", "0", "-q"]
        begins = len(self.log.read_text(errors="replace")) if self.log.exists() else 0
        self.process = processes.start([*args, "--stall-after", str(STALL_AFTER)], self.log)
        self.ops = await asyncio.to_thread(processes.ops_address, self.log, self.process, begins)

    async def kill(self) -> None:
        """SIGKILL: no drain, no give-back; acks in flight are lost."""
        assert self.process is not None
        self.process.kill()
        await asyncio.to_thread(self.process.wait, 10)

    def stop(self) -> int | None:
        return processes.stop(self.process) if self.process is not None else None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def check(self, every: float = 0.5) -> None:
        """Fail now if the process exited or reports a stall (at most every ``every`` s)."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"fnevents exited with status {self.process.returncode}:\n{self.tail()}"
            )
        now = time.monotonic()
        if now - self._last_check < every:
            return
        self._last_check = now
        status, body = await processes.readiness(self.ops)
        if status == 503 and body.startswith("stalled"):
            raise AssertionError(
                f"the trigger stopped making progress with work pending; /readyz said: "
                f"{body.strip()}\n--- its log ---\n{self.tail()}"
            )

    async def backlog(self) -> float | None:
        """The process's ``fnevents_backlog`` gauge for its input (None before the first
        reading)."""
        page = await processes.scrape(self.ops)
        wanted = {f'topic="{self.app.input_topic}"', f'group="{group_of(self.app)}"'}
        for labels, value in re.findall(r"^fnevents_backlog\{(.*)\} (\S+)$", page, re.M):
            if set(labels.split(",")) == wanted:
                return float(value)
        return None


async def until_accepted(trigger: TriggerProcess, sink: RecordingSink, count: int) -> None:
    """Until the sink has accepted ``count`` deliveries, checking the process meanwhile."""
    async with asyncio.timeout(DELIVERY_TIMEOUT):
        while len(sink.accepted) < count:
            await trigger.check()
            await asyncio.sleep(0.005)


async def settle(
    trigger: TriggerProcess, sink: RecordingSink, expected: Callable[[], set[str]]
) -> None:
    """Until every id in ``expected()`` reached the sink, then until quiescence; a stall or
    an exit fails at once, a timeout says what is missing."""
    started = time.monotonic()
    while True:
        missing = expected() - {e.id for e in sink.accepted}
        if not missing:
            break
        if time.monotonic() - started > DELIVERY_TIMEOUT:
            raise AssertionError(
                f"{len(missing)} accepted event(s) never reached the sink within "
                f"{DELIVERY_TIMEOUT:g}s and no stall was reported, e.g. {sorted(missing)[:5]}"
                f"\n--- log ---\n{trigger.tail()}"
            )
        await trigger.check()
        await asyncio.sleep(0.1)
    seen, quiet_since = len(sink.requests), time.monotonic()
    started = time.monotonic()
    while True:
        await trigger.check()
        if len(sink.requests) != seen:
            seen, quiet_since = len(sink.requests), time.monotonic()
        if time.monotonic() - quiet_since >= QUIET and await trigger.backlog() == 0:
            return
        if time.monotonic() - started > QUIESCENCE_TIMEOUT:
            raise AssertionError(
                f"no quiescence within {QUIESCENCE_TIMEOUT:g}s: backlog "
                f"{await trigger.backlog()}, {len(sink.requests) - seen} new request(s)"
                f"\n--- log ---\n{trigger.tail()}"
            )
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Tally:
    """Accepted ids (the broker took them) against what the sink received."""

    accepted: set[str]
    received: collections.Counter[str]

    @classmethod
    def of(cls, accepted: set[str], sink: RecordingSink) -> Tally:
        return cls(set(accepted), collections.Counter(e.id for e in sink.accepted))

    @property
    def lost(self) -> set[str]:
        return self.accepted - set(self.received)

    @property
    def duplicates(self) -> int:
        """Deliveries beyond the first, over all ids."""
        return sum(n - 1 for n in self.received.values())

    def line(self, what: str) -> str:
        twice = sum(1 for n in self.received.values() if n > 1)
        return (
            f"FAULT {what}: accepted {len(self.accepted)}, received {len(self.received)} "
            f"distinct in {sum(self.received.values())} deliveries; lost {len(self.lost)}, "
            f"duplicates {self.duplicates} ({twice} ids)"
        )
