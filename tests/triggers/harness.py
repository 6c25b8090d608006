"""Build one trigger over a real in-memory bus, without manifests."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from events.bus.contract import EventBus
from events.delivery.sinks import SinkClient
from events.manifests.extensions import DeliverySpec
from events.observability.console import Console
from events.observability.metrics import Metrics
from triggers.conditions import Condition
from triggers.runner import TriggerRunner
from triggers.subscriber import DeliveryContext, Subscriber

FAST = DeliverySpec(retry=3, backoffPolicy="linear", backoffDelay=0.01, timeout=2)


def subscriber(
    index: int = 0, condition: str = "a", inputs: Sequence[str] = ("a",), **kwargs
) -> Subscriber:
    kwargs.setdefault("policy", FAST)
    kwargs.setdefault("dead_letter_topic", "ns-t-deadletter")
    return Subscriber(trigger="ns/t", index=index, condition=Condition(condition, inputs), **kwargs)


class OwnedTrigger(TriggerRunner):
    """A trigger that owns its sink client, so stopping it closes the connections too."""

    async def stop(self, drain_timeout: float = 10.0) -> None:
        await super().stop(drain_timeout)
        await self.ctx.sinks.close()


def runner(
    bus: EventBus,
    subscribers: Sequence[Subscriber],
    inputs: dict[str, str],
    window: float = 60.0,
    output: io.StringIO | None = None,
    **options: Any,
) -> tuple[TriggerRunner, DeliveryContext]:
    """A trigger ``ns/t`` (group ``ns-t``) printing to ``output`` (a buffer of its own if
    not given); ``options`` go to TriggerRunner (e.g. order_by)."""
    stream = io.StringIO() if output is None else output
    ctx = DeliveryContext(bus, SinkClient(), Metrics(), Console(stream=stream))
    return OwnedTrigger("ns/t", inputs, subscribers, window, "ns-t", ctx, **options), ctx
