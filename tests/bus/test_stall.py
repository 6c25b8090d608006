"""The stall report (events.bus.stall) over real buses and the real consumer loop: a
consumer that stops moving while work waits is reported once, and again when it moves;
an idle consumer, or one on a bus that cannot tell what waits (MQTT), never is."""

from __future__ import annotations

import asyncio

import pytest

from events.brokers.memory.bus import MemoryBus
from events.brokers.mqtt.bus import MqttBus, MqttSettings
from events.bus.consumer import Consumer
from events.bus.contract import EventBus, Message
from events.bus.stall import StallWatch
from events.cloudevent import CloudEvent
from tests.bus.capabilities import require_broker
from tests.helpers import until

STALL_AFTER = 0.4
TIMEOUT = 5.0


class Watched:
    """A consumer on ``bus`` whose handler waits for ``gate``, watched by a StallWatch."""

    def __init__(self, bus: EventBus, topic: str) -> None:
        self.said: list[str] = []
        self.warned: list[str] = []
        self.backlogs: list[tuple[str, str, int]] = []
        self.watch = StallWatch(
            STALL_AFTER,
            self.said.append,
            self.warned.append,
            lambda *reading: self.backlogs.append(reading),
            interval=0.1,
        )
        self.gate = asyncio.Event()
        self.handled: list[str] = []
        self.consumer = Consumer(
            bus,
            topic,
            "g",
            self._handle,
            slots=asyncio.Semaphore(2),
            report=self.warned.append,
            max_deliveries=5,
            dead_letter_topic=f"{topic}-dl",
            watch=self.watch,
            label="trigger default/t input a",
        )

    async def _handle(self, message: Message) -> None:
        await self.gate.wait()
        self.handled.append(message.event.id)

    async def __aenter__(self) -> Watched:
        await self.consumer.start()
        self.watch.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gate.set()
        await self.watch.stop()
        await self.consumer.stop(drain_timeout=1)


async def publish(bus: EventBus, topic: str, count: int) -> None:
    for n in range(count):
        await bus.publish(topic, CloudEvent.create("t", "/s", {"n": n}, id=f"e{n}"))


async def test_a_consumer_stuck_with_work_waiting_is_reported_until_it_moves() -> None:
    async with MemoryBus() as bus, Watched(bus, "orders") as watched:
        await publish(bus, "orders", 5)  # 2 taken by the stuck handler, 3 queued
        await until(lambda: watched.watch.stalls(), "the stall is reported", TIMEOUT)
        (reason,) = watched.watch.stalls()
        assert reason.startswith("trigger default/t input a: no progress on orders for ")
        assert "5 event(s) wait on the broker for group g" in reason
        assert len(watched.warned) == 1 and "/readyz" in watched.warned[0]
        assert ("orders", "g", 5) in watched.backlogs
        watched.gate.set()
        await until(lambda: not watched.watch.stalls(), "the stall is over", TIMEOUT)
        await until(lambda: len(watched.handled) == 5, "all handled", TIMEOUT)
        assert any("moving again on orders" in line for line in watched.said), watched.said
        assert len(watched.warned) == 1, "said once, not on every check"


async def test_an_idle_consumer_is_not_stalled() -> None:
    async with MemoryBus() as bus, Watched(bus, "quiet") as watched:
        await asyncio.sleep(STALL_AFTER * 3)
        assert watched.watch.stalls() == [] and watched.warned == []
        assert watched.backlogs and {b[2] for b in watched.backlogs} == {0}


@pytest.mark.mqtt
async def test_a_bus_that_cannot_tell_what_waits_is_never_reported(mqtt_broker) -> None:
    require_broker("mqtt", mqtt_broker)
    bus = MqttBus(MqttSettings.model_validate({"url": f"tcp://{mqtt_broker.address}"}))
    await bus.start()
    try:
        async with Watched(bus, "stall/mqtt") as watched:
            await publish(bus, "stall/mqtt", 5)
            await asyncio.sleep(STALL_AFTER * 3)
            assert watched.handled == [] and watched.watch.stalls() == []
            assert watched.backlogs == []
    finally:
        await bus.close()
