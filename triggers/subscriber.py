"""One Trigger subscriber: where a matching event goes, and what happens when it can't.

A subscriber is independent of its siblings (OpenFunction keyed them by their
condition string, so two with the same condition collapsed into one).

- ``topic``: the event is published to that bus topic.
- ``sink``: the event is POSTed under the delivery policy; when the policy gives
  up, it goes to ``deadLetterSink``, else ``deadLetterTopic``, else the trigger's
  default dead-letter topic (``{namespace}-{trigger}-deadletter``) -- never nowhere.

Dead-lettered events carry Knative's error attributes (``knativeerrordest``,
``knativeerrorcode``, ``knativeerrordata``) plus ``fnerrorreason`` and
``fnerrorattempts``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from events.console import Console
from events.errors import DeliveryError
from events.manifests.extensions import DeliverySpec
from events.metrics import Metrics
from triggers import policy
from triggers.conditions import Condition
from triggers.filters import EventFilter
from triggers.sinks import BODY_EXCERPT, SinkClient


@dataclass
class DeliveryContext:
    """What every subscriber of a process shares."""

    bus: EventBus
    sinks: SinkClient
    metrics: Metrics
    console: Console


@dataclass
class Subscriber:
    trigger: str  # "namespace/name"
    index: int
    condition: Condition
    policy: DeliverySpec
    dead_letter_topic: str
    sink_url: str | None = None
    topic: str | None = None
    dead_letter_url: str | None = None
    filter: EventFilter | None = None
    reply_topic: str | None = None
    max_in_flight: int = 64
    _counters: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.trigger}#{self.index}"

    def bind(self, metrics: Metrics) -> None:
        """Look this subscriber's metric series up once, not on every delivery."""
        labels = (self.trigger, str(self.index))
        self._counters = {
            "delivered": metrics.delivered.labels(*labels),
            "failed": metrics.failed_attempts.labels(*labels),
            "dead_lettered": metrics.dead_lettered.labels(*labels),
            "latency": metrics.latency.labels(self.trigger),
        }

    async def deliver(self, event: CloudEvent, ctx: DeliveryContext, received: float) -> None:
        """Deliver or dead-letter ``event``. Raises only if the bus refused a publish."""
        if self.topic:
            await ctx.bus.publish(self.topic, event, key=_key(event))
            self._delivered(event, ctx, received, f"topic {self.topic}")
        if self.sink_url:
            await self._to_sink(event, ctx, received)

    async def _to_sink(self, event: CloudEvent, ctx: DeliveryContext, received: float) -> None:
        url = self.sink_url
        assert url is not None
        failed = self._counters["failed"]
        outcome = await policy.deliver(
            lambda: ctx.sinks.post(url, event), self.policy, lambda _: failed.inc()
        )
        if outcome.delivered:
            self._delivered(event, ctx, received, url)
            return
        assert outcome.error is not None
        letter = dead_letter(event, url, outcome.error, outcome.attempts)
        where = await self._dead_letter(letter, ctx)
        self._counters["dead_lettered"].inc()
        ctx.console.delivery(
            "dead-lettered",
            self.label,
            where,
            event,
            time.monotonic() - received,
            f"after {outcome.attempts} attempt(s): {outcome.error.reason}",
        )

    async def _dead_letter(self, letter: CloudEvent, ctx: DeliveryContext) -> str:
        if self.dead_letter_url:
            url = self.dead_letter_url
            outcome = await policy.deliver(lambda: ctx.sinks.post(url, letter), self.policy)
            if outcome.delivered:
                return url
            ctx.console.warn(
                f"{self.label}: deadLetterSink {url} failed too ({outcome.error}); "
                f"using topic {self.dead_letter_topic}"
            )
        await ctx.bus.publish(self.dead_letter_topic, letter, key=_key(letter))
        return f"topic {self.dead_letter_topic}"

    def _delivered(self, event: CloudEvent, ctx: DeliveryContext, received: float, where: str):
        seconds = time.monotonic() - received
        self._counters["delivered"].inc()
        self._counters["latency"].observe(seconds)
        ctx.console.delivery("delivered", self.label, where, event, seconds)


def dead_letter(event: CloudEvent, destination: str, error: DeliveryError, attempts: int):
    """The event as it goes to a dead letter: unchanged, plus error attributes."""
    attributes: dict[str, object] = {
        "knativeerrordest": destination,
        "fnerrorreason": error.reason,
        "fnerrorattempts": attempts,
    }
    if error.status is not None:
        attributes["knativeerrorcode"] = str(error.status)
    if error.body_excerpt:
        data = error.body_excerpt.encode()[:BODY_EXCERPT]
        attributes["knativeerrordata"] = base64.b64encode(data).decode()
    return event.evolve(**attributes)


def _key(event: CloudEvent) -> str | None:
    key = event.extensions.get("partitionkey")
    return str(key) if key is not None else event.subject
