"""The async host: a function that consumes a bus topic.

It reads its ``input`` topic as a consumer group (``{namespace}-{name}``, named by
``events.app.plans``; replicas share the work), calls the function with each event,
and acks once the function returned and its ``context.send`` outputs are on the bus.
An exception nacks the event for redelivery with backoff; after ``maxDeliveries`` it
goes to the dead-letter topic (``{namespace}-{name}-deadletter``) with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from events.bus.consumer import Consumer
from events.bus.contract import EventBus, Message
from events.bus.stall import StallWatch
from events.functions.loader import Invoker
from events.observability import tracing
from events.observability.console import Console


class TopicFunction:
    def __init__(
        self,
        namespace: str,
        name: str,
        invoke: Invoker,
        bus: EventBus,
        topic: str,
        group: str,
        dead_letter_topic: str,
        console: Console,
        concurrency: int,
        max_deliveries: int,
        watch: StallWatch | None = None,
    ) -> None:
        self.label = f"{namespace}/{name}"
        self.topic = topic
        self._invoke = invoke
        self._console = console
        handler: Any = self._handle
        if tracing.enabled:  # a CONSUMER span per delivery; user code runs inside it
            handler = tracing.consumer(handler, bus, topic, group, f"function/{self.label}")
        self._consumer = Consumer(
            bus,
            topic,
            group,
            handler,
            slots=asyncio.Semaphore(concurrency),
            report=lambda text: console.warn(f"function {self.label}: {text}"),
            max_deliveries=max_deliveries,
            dead_letter_topic=dead_letter_topic,
            watch=watch,
            label=f"function {self.label}",
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def _handle(self, message: Message) -> None:
        await self._invoke(message.event)

    async def stop(self, drain_timeout: float = 10.0) -> None:
        await self._consumer.stop(drain_timeout)
