"""Running a source the two ways the source tests need.

- :class:`Running`: the manifests in a Runtime on the embedded in-memory bus, as
  ``fnevents run`` runs them; the test reads what the source put on the bus.
- :class:`Recorder`: an outlet for a Source run alone (``source.run(Outlet(...))``),
  which records what is emitted and can stall or fail the way a bus can.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.cli.main import main
from events.cloudevent import CloudEvent
from events.errors import BusError
from events.observability.console import Console
from sources.contract import Outlet, Source
from tests.helpers import counter, received

NAMESPACE = "default"
#: A message a test publishes only to learn that a subscription is in place (MQTT hands
#: a retained one to every new subscription); what the source makes of it is left out.
PROBE = b"probe"


class Running:
    """The EventSource ``eventsource`` of ``manifests`` in a Runtime with an in-memory bus.

    ``subscriptions`` read the bus topic of each of ``events`` (``events`` reads the
    first), ``dead`` the EventSource's dead letter; ``output`` is what it printed."""

    def __init__(
        self,
        tmp_path: Path,
        manifests: str,
        eventsource: str,
        events: Sequence[str],
        timeout: float,
    ) -> None:
        path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(manifests)
        self.label = f"{NAMESPACE}/{eventsource}/{events[0]}"
        self.topics = {event: f"{NAMESPACE}-{eventsource}-{event}" for event in events}
        self.dead_letter = f"{NAMESPACE}-{eventsource}-deadletter"
        self.timeout = timeout
        self._output = io.StringIO()
        self.runtime = Runtime(load_catalog([str(path)], []), Console(stream=self._output))

    async def __aenter__(self) -> Running:
        await self.runtime.start()
        bus = next(iter(self.runtime.buses.values()))
        self.subscriptions = {
            event: await bus.subscribe(topic, "test") for event, topic in self.topics.items()
        }
        self.events = next(iter(self.subscriptions.values()))
        self.dead = await bus.subscribe(self.dead_letter, "test")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop(drain_timeout=0.5)

    async def next(self, subscription=None, timeout: float | None = None) -> CloudEvent:
        """The next event on ``subscription`` (the first event's topic by default), acked."""
        return await received(subscription or self.events, timeout or self.timeout)

    @property
    def output(self) -> str:
        return self._output.getvalue()

    def counter(self, name: str) -> float:
        """The source's counter ``name`` (a ``Metrics`` attribute, e.g. ``source_rejected``)."""
        return counter(self.runtime.metrics, name, self.label)

    def exposition(self) -> str:
        return self.runtime.metrics.exposition().decode()


class Recorder:
    """An outlet that records events. From the event whose data is ``stall`` on, emit
    never returns (as a bus that stopped accepting); with ``fail``, emit of that one
    raises a retriable BusError once (as a bus that refused it). A probe, and the empty
    message that clears a retained one, only set ``probed``."""

    def __init__(self, stall: object = None, fail: object = None) -> None:
        self.events: list[CloudEvent] = []
        self.stall, self.fail = stall, fail
        self.stalled: CloudEvent | None = None
        self.failed: list[str] = []
        self.stalling = asyncio.Event()
        self.probed = asyncio.Event()
        self.outlet = Outlet(self.emit)

    async def emit(self, event: CloudEvent) -> None:
        if event.data in (PROBE.decode(), ""):
            self.probed.set()
            return
        if self.fail is not None and event.data == self.fail and not self.failed:
            self.failed.append(event.id)
            raise BusError("the bus is down", retriable=True)
        if self.stall is not None and event.data == self.stall:
            self.stalled = event
            self.stalling.set()
            await asyncio.Event().wait()
        self.events.append(event)

    @property
    def data(self) -> list[object]:
        return [event.data for event in self.events]

    async def wait_for(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.01)


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], manifests: str) -> tuple[int, str]:
    """``fnevents validate`` of ``manifests`` (written to ``tmp_path/app.yaml``): its exit
    code and what it wrote to stderr."""
    path = tmp_path / "app.yaml"
    path.write_text(manifests)
    code = main(["validate", "-f", str(path)])
    return code, capsys.readouterr().err


def run(source: Source, outlet: Recorder) -> asyncio.Task[None]:
    return asyncio.create_task(source.run(outlet.outlet))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def rfc3339_millis(millis: int) -> str:
    """A broker timestamp in milliseconds as the sources write ``time``."""
    stamp = datetime.fromtimestamp(millis / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
