"""Manifests -> Runtime -> real HTTP sinks, in one process: the wiring end to end."""

from __future__ import annotations

import asyncio
import io

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.observability.console import Console
from tests.helpers import receive
from tests.sink import RecordingSink, Reply

MANIFESTS = """
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {{name: default}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: clock}}
spec:
  eventBus: default
  cron:
    fast: {{schedule: "@every 200ms"}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: direct}}
spec:
  sink: {{uri: "{direct}"}}
  delivery: {{format: structured}}
  cron:
    ping: {{schedule: "@every 200ms"}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: flaky}}
spec:
  eventBus: default
  delivery: {{retry: 3, backoffDelay: 10ms}}
  inputs:
    fast: {{eventSource: clock, event: fast}}
  subscribers:
  - condition: fast
    sink: {{uri: "{flaky}"}}
  - condition: fast
    sink: {{uri: "{broken}"}}
    deadLetterSink: {{uri: "{graveyard}"}}
    delivery: {{retry: 1, backoffDelay: 10ms}}
"""


async def test_runtime_wires_sources_triggers_sinks_and_dead_letters(tmp_path) -> None:
    flaky_replies = lambda n: Reply(500) if n < 2 else Reply(200)  # noqa: E731
    async with (
        RecordingSink(flaky_replies) as flaky,
        RecordingSink(lambda n: Reply(502, body="upstream gone")) as broken,
        RecordingSink() as graveyard,
        RecordingSink() as direct,
    ):
        path = tmp_path / "app.yaml"
        path.write_text(
            MANIFESTS.format(
                flaky=flaky.url, broken=broken.url, graveyard=graveyard.url, direct=direct.url
            )
        )
        output = io.StringIO()
        runtime = Runtime(load_catalog([str(path)], []), Console(stream=output))
        await runtime.start()
        try:
            await asyncio.gather(flaky.wait_for(3), graveyard.wait_for(2), direct.wait_for(2))
        finally:
            await runtime.stop()
        first = flaky.requests[0].id
        assert [e.id for e in flaky.requests[:3]] == [first] * 3, "retried the same event"
        assert flaky.accepted[0].id == first
        assert len({e.id for e in flaky.accepted}) == len(flaky.accepted), "no duplicates"
        letter = graveyard.accepted[0]
        assert letter.extensions["knativeerrorcode"] == "502"
        assert letter.extensions["fnerrorattempts"] == "2"  # HTTP headers carry strings
        assert all(e.type == "dev.fnevents.cron.fired" for e in direct.accepted)
        assert set(direct.modes) == {"structured"}, "the EventSource's delivery.format"
        assert set(flaky.modes) == {"binary"}, "the default mode"
        text = output.getvalue()
        assert "delivered     default/flaky#0" in text
        assert "dead-lettered default/flaky#1" in text
        assert "using the embedded in-memory bus" in text


SEVERAL_CRON_EVENTS = """
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {name: default}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {name: clocks}
spec:
  eventBus: default
  cron:
    fast: {schedule: "@every 200ms"}
    slow: {schedule: "@every 300ms"}
    seconds: {schedule: "* * * * * *"}
"""


async def test_every_event_of_one_eventsource_runs(tmp_path) -> None:
    path = tmp_path / "clocks.yaml"
    path.write_text(SEVERAL_CRON_EVENTS)
    runtime = Runtime(load_catalog([str(path)], []), Console(stream=io.StringIO()))
    try:
        await runtime.start()
        bus = next(iter(runtime.buses.values()))
        subscriptions = {
            event: await bus.subscribe(f"default-clocks-{event}", "test")
            for event in ("fast", "slow", "seconds")
        }
        for event, subscription in subscriptions.items():
            message = await receive(subscription, 5)
            await message.ack()
            assert message.event.subject == event
    finally:
        await runtime.stop(drain_timeout=0.5)
