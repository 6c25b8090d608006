"""Swapping the broker is swapping one Component file.

1. The same manifests run on every backend, with only ``--components`` changed,
   and deliver the same set of events to a sink and to a topic.
2. The README's swap command itself (``fnevents run -f examples/quickstart
   --components components/<broker>.yaml``) shows deliveries on every broker; the
   component file is used as shipped, with only its address pointed at the
   broker the test started.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.plans import topic_for
from events.app.runtime import Runtime
from events.cloudevent import CloudEvent
from events.observability.console import Console
from tests.bus.capabilities import require_broker
from tests.e2e import processes
from tests.e2e.processes import ROOT, piped, read_until
from tests.sink import RecordingSink

SCENARIO = Path(__file__).parent / "swap.yaml"

#: backend -> (component file, the address it ships with, the broker fixture)
COMPONENTS = {
    "memory": ("in-memory.yaml", None, None),
    "redis": ("redis.yaml", "localhost:6379", "redis_broker"),
    "kafka": ("kafka.yaml", "localhost:9092", "kafka_broker"),
    "jetstream": ("jetstream.yaml", "localhost:4222", "nats_broker"),
    "mqtt": ("mqtt.yaml", "localhost:1883", "mqtt_broker"),
}
BACKENDS = [pytest.param(name, marks=getattr(pytest.mark, name)) for name in COMPONENTS]


@pytest.fixture
def component_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The shipped component file, pointed at the test's broker."""
    backend = request.getfixturevalue("backend")
    filename, address, fixture = COMPONENTS[backend]
    text = (ROOT / "components" / filename).read_text()
    if fixture:
        broker = request.getfixturevalue(fixture)
        require_broker(backend, broker)
        text = text.replace(address, broker.address)
    path = tmp_path / filename
    path.write_text(text)
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_the_same_manifests_deliver_the_same_events_on_every_backend(
    backend: str, component_file: Path, tmp_path: Path
) -> None:
    events = [
        CloudEvent.create("swap.test", "/tests/swap", {"n": n}, id=f"swap-{n}") for n in range(25)
    ]
    async with RecordingSink() as sink:
        manifests = tmp_path / "scenario.yaml"
        manifests.write_text(SCENARIO.read_text().replace("http://sink.invalid/", sink.url))
        catalog = load_catalog([str(manifests)], [str(component_file)])
        runtime = Runtime(catalog, Console(stream=io.StringIO()))
        await runtime.start()
        try:
            bus = next(iter(runtime.buses.values()))
            out = await bus.subscribe("swap-out", f"reader-{backend}")
            source_topic = topic_for("default", "upstream", "data")
            for event in events:
                await bus.publish(source_topic, event)
            await sink.wait_for(len(events), timeout=30)
            via_topic = set()
            async with asyncio.timeout(30):
                while len(via_topic) < len(events):
                    message = await anext(out)
                    via_topic.add(message.event.id)
                    await message.ack()
            await out.close()
        finally:
            await runtime.stop()
    expected = {e.id for e in events}
    assert {e.id for e in sink.accepted} == expected
    assert via_topic == expected
    assert {e.data["n"] for e in sink.accepted} == set(range(25))


@pytest.mark.e2e
def test_the_readme_swap_command_shows_deliveries(backend: str, component_file: Path) -> None:
    process = piped(
        "run", "-f", "examples/quickstart", "--components", str(component_file), "--port", "0"
    )
    try:
        lines = read_until(process, r"delivered\s+default/hello-trigger#0", timeout=40)
    finally:
        processes.finish(process)
    assert any(line.startswith("hello: dev.fnevents.cron.fired") for line in lines)
    assert process.returncode == 0
