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

**In flight.** At most ``max_in_flight`` (the ``maxInFlight`` extension) sink
deliveries of one subscriber are open at once. A delivery holds its slot from the
first attempt until it is settled -- retries, their backoff and Retry-After waits,
a dead letter and a reply publish included -- so a slow or failing sink slows the
trigger down instead of piling up work: ``deliver`` waits for a slot, the
trigger's handler waits with it, the consumer's slots fill and it stops reading
the bus. Unread events stay on the bus, unacked; memory stays bounded.

**Replies.** When the sink answers 2xx with a CloudEvent, that event is published
to ``reply_topic`` (default ``{namespace}-{trigger}-reply``) on the trigger's bus
before ``deliver`` returns, so before the incoming message is acked; if the bus
refuses it, ``deliver`` raises, the message is nacked and redelivered (the sink
may then see the event twice: at least once). Replies are counted in
``fnevents_reply_events_total``; an answer that claims to be a CloudEvent but does
not decode is warned about, counted in ``fnevents_invalid_replies_total`` and
dropped (the delivery itself succeeded).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from events.delivery import policy
from events.delivery.sinks import BODY_EXCERPT, SinkClient, SinkReply
from events.errors import DeliveryError
from events.manifests.extensions import DeliverySpec
from events.observability import tracing
from events.observability.console import Console
from events.observability.metrics import Metrics
from events.observability.recent import DEAD_LETTERED, DELIVERED, RETRIED, RecentEvents
from triggers.conditions import Condition
from triggers.filters import EventFilter


@dataclass
class DeliveryContext:
    """What every subscriber of a process shares."""

    bus: EventBus
    sinks: SinkClient
    metrics: Metrics
    console: Console
    #: The web console's recent events; None (the default) when it is off.
    recent: RecentEvents | None = None


@dataclass
class Subscriber:
    """Where one subscriber's events go; see the module docstring.

    ``bind`` must be called once (the runner does) before ``deliver``; after that
    ``deliver`` may run concurrently for any number of events.
    """

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
    #: what every delivery counts in (delivered, latency), and where a topic delivery
    #: went, looked up once (bind, __post_init__) rather than per event
    _delivered_tally: Any = field(default=None, init=False, repr=False)
    _topic_where: str = field(default="", init=False, repr=False)
    _slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"{self.label}: maxInFlight must be at least 1")
        self._slots = asyncio.Semaphore(self.max_in_flight)
        if self.reply_topic is None:
            self.reply_topic = f"{self.trigger.replace('/', '-')}-reply"
        self._topic_where = f"topic {self.topic}"

    @cached_property
    def label(self) -> str:  # cached: it is passed to the console on every delivery
        return f"{self.trigger}#{self.index}"

    @property
    def in_flight(self) -> int:
        """Sink deliveries of this subscriber open now (read by the web console)."""
        return self.max_in_flight - self._slots._value

    def bind(self, metrics: Metrics) -> None:
        """Look this subscriber's metric series up once, not on every delivery."""
        labels = (self.trigger, str(self.index))
        self._counters = {
            # per event: tallies, read into their series whenever the registry is read
            "delivered": metrics.delivery_tally(
                metrics.delivered.labels(*labels), metrics.latency.labels(self.trigger)
            ),
            "failed": metrics.failed_attempts.labels(*labels),
            "dead_lettered": metrics.dead_lettered.labels(*labels),
            "replies": metrics.replies.labels(*labels),
            "invalid_replies": metrics.invalid_replies.labels(*labels),
            "latency": metrics.latency_tally(metrics.latency.labels(self.trigger)),
        }
        self._delivered_tally = self._counters["delivered"]

    async def deliver(self, event: CloudEvent, ctx: DeliveryContext, received: float) -> None:
        """Deliver or dead-letter ``event``; publish the sink's reply, if any.

        Returns once the event is safe (delivered, or dead-lettered), so the caller
        may ack. Raises only if the bus refused a publish (the caller then nacks).
        While ``max_in_flight`` sink deliveries of this subscriber are open, it
        waits for one to finish: that wait is the backpressure to the bus.
        """
        if self.topic:
            key = event.extensions.get("partitionkey")  # _key, inline: once per event
            key = event.subject if key is None else str(key)
            await ctx.bus.publish(self.topic, event, key=key)
            recent, where = ctx.recent, self._topic_where
            if recent is not None:
                recent.seen(f"topic:{self.topic}", event, self.label)
            # _delivered, inline (a call less on the path every topic event takes)
            seconds = time.monotonic() - received
            self._delivered_tally.delivered(seconds)
            if recent is not None:
                recent.outcome(f"trigger:{self.trigger}", event.id, self.label, DELIVERED, where)
            ctx.console.delivery("delivered", self.label, where, event, seconds)
        if self.sink_url:
            async with self._slots:
                await self._to_sink(self.sink_url, event, ctx, received)

    async def _to_sink(
        self, url: str, event: CloudEvent, ctx: DeliveryContext, received: float
    ) -> None:
        failed, structured = self._counters["failed"], self.policy.structured
        on_failure = (lambda _: failed.inc()) if ctx.recent is None else self._retried(event, ctx)
        outcome = await policy.deliver(
            lambda limit: ctx.sinks.post(url, event, structured, limit),
            self.policy,
            on_failure,
        )
        if outcome.delivered:
            if outcome.value is not None:
                await self._reply(outcome.value, url, event, ctx, received)
            self._delivered(event, ctx, received, url)
            return
        assert outcome.error is not None
        letter = dead_letter(event, url, outcome.error, outcome.attempts)
        if tracing.enabled:  # a settle span around the dead-lettering
            reason, attempts = outcome.error.reason, outcome.attempts
            where = await tracing.settle(
                self._dead_letter, letter, ctx, event=event, reason=reason, attempts=attempts
            )
        else:
            where = await self._dead_letter(letter, ctx)
        self._counters["dead_lettered"].inc()
        detail = f"after {outcome.attempts} attempt(s): {outcome.error.reason}"
        if ctx.recent is not None:
            where_to = f"{detail} -> {where}"
            ctx.recent.outcome(
                f"trigger:{self.trigger}", event.id, self.label, DEAD_LETTERED, where_to
            )
        ctx.console.delivery(
            "dead-lettered", self.label, where, event, time.monotonic() - received, detail
        )

    def _retried(self, event: CloudEvent, ctx: DeliveryContext):
        """The failed-attempt callback when the console records outcomes."""
        failed, recent = self._counters["failed"], ctx.recent
        assert recent is not None

        def record(error: DeliveryError) -> None:
            failed.inc()
            recent.outcome(f"trigger:{self.trigger}", event.id, self.label, RETRIED, error.reason)

        return record

    async def _reply(
        self, reply: SinkReply, url: str, event: CloudEvent, ctx: DeliveryContext, received: float
    ) -> None:
        """Publish what the sink answered with to the reply topic (before the ack)."""
        if reply.problem is not None:
            self._counters["invalid_replies"].inc()
            ctx.console.warn(
                f"{self.label}: {url} took event {event.id} but answered with an invalid "
                f"CloudEvent, which is not published: {reply.problem}"
            )
            return
        topic = self.reply_topic
        assert topic is not None
        for answer in reply.events:
            await ctx.bus.publish(topic, answer, key=_key(answer))
            self._counters["replies"].inc()
            ctx.console.delivery(
                "replied",
                self.label,
                f"topic {topic}",
                answer,
                time.monotonic() - received,
                f"{url} answered event {event.id}",
            )

    async def _dead_letter(self, letter: CloudEvent, ctx: DeliveryContext) -> str:
        if self.dead_letter_url:
            url, structured = self.dead_letter_url, self.policy.structured
            outcome = await policy.deliver(
                lambda limit: ctx.sinks.post(url, letter, structured, limit), self.policy
            )
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
        self._delivered_tally.delivered(seconds)
        if ctx.recent is not None:
            ctx.recent.outcome(f"trigger:{self.trigger}", event.id, self.label, DELIVERED, where)
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
