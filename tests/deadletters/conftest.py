"""Dead letters on real brokers: manifests for a Trigger on a bus, letters written
straight onto its dead-letter topic (as the subscriber writes them), and the
``fnevents deadletters`` command run in-process on its own event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.bus.contract import EventBus
from events.cli.main import main
from events.cloudevent import CloudEvent
from events.errors import DeliveryError
from tests.bus.backends import BACKENDS, make_bus
from tests.manifests import documents
from triggers.subscriber import dead_letter

#: the backends that keep dead letters for another process
SUPPORTED = ("redis", "kafka", "jetstream")


@dataclass
class Setup:
    """One Trigger's dead letters on one backend."""

    backend: str
    broker: Any
    manifest: Path
    trigger: str

    @property
    def topic(self) -> str:
        return f"default-{self.trigger}-deadletter"

    def bus(self) -> EventBus:
        return make_bus(self.backend, self.broker, pubsub_name="eventbus")

    async def write(self, *letters: CloudEvent, topic: str | None = None) -> None:
        async with self.bus() as bus:
            for letter in letters:
                await bus.publish(topic or self.topic, letter, key=letter.subject)

    async def write_at_once(self, *letters: CloudEvent) -> None:
        """Published concurrently, so brokers batch them (Kafka: multi-record batches)."""
        async with self.bus() as bus:
            await asyncio.gather(*(bus.publish(self.topic, x, key=x.subject) for x in letters))

    async def cli(self, *args: str) -> tuple[int, str, str]:
        return await run_cli(*args, "-f", str(self.manifest))

    async def listed(self, *args: str) -> list[dict[str, Any]]:
        which = () if "--topic" in args else ("--trigger", self.trigger)
        status, out, err = await self.cli("deadletters", "list", "--json", *which, *args)
        assert status == 0, err
        return orjson.loads(out)["letters"]


async def run_cli(*args: str) -> tuple[int, str, str]:
    """``fnevents ARGS`` in a thread (it runs its own event loop): status, stdout, stderr."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(list(args))

    status = await asyncio.to_thread(call)
    return status, out.getvalue(), err.getvalue()


def write_manifests(tmp: Path, backend: str, broker: Any, sink: str) -> Setup:
    case = BACKENDS[backend]
    trigger = f"t{uuid.uuid4().hex[:10]}"
    manifest = tmp / "app.yaml"
    manifest.write_text(
        documents.bus(case.component_type, **case.metadata(broker))
        + documents.hourly_trigger(trigger, sink)
    )
    return Setup(backend, broker, manifest, trigger)


def letter(n: int, sink: str, status: int = 503, body: str = "down") -> CloudEvent:
    """Event ``n`` as a subscriber dead-letters it after 4 attempts at ``sink``."""
    event = CloudEvent.create(
        type="dev.test.tick",
        source="/test",
        id=f"ev-{n}",
        subject="tick",
        data={"n": n},
    )
    error = DeliveryError(f"{sink} answered {status}", status=status, body_excerpt=body)
    return dead_letter(event, sink, error, 4)


@pytest.fixture(params=[pytest.param(n, marks=BACKENDS[n].mark) for n in SUPPORTED])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def broker(backend: str, request: pytest.FixtureRequest) -> Any:
    fixture = BACKENDS[backend].broker_fixture
    assert fixture is not None
    return request.getfixturevalue(fixture)


@pytest.fixture
async def sink() -> AsyncIterator[Any]:
    from tests.sink import RecordingSink

    async with RecordingSink() as started:
        yield started


@pytest.fixture
def setup(tmp_path: Path, backend: str, broker: Any, sink: Any) -> Setup:
    return write_manifests(tmp_path, backend, broker, sink.url)
