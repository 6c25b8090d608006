"""Where a source's events go: the EventSource's bus topic and/or its sink.

Both paths are at least once and block the source until the event is safe:
publishing waits out a broker outage; a sink gets the delivery policy (retry with
backoff, per-attempt timeout, Retry-After, in ``plan.delivery``'s mode: binary by
default, or structured) and then ``deadLetterSink``, and if that fails too the
error reaches the source, which then does not commit its upstream position. A
CloudEvent a source's sink answers with is not published anywhere (a source has
no reply topic).

Rejected input (a payload that cannot become an event) is published as an
``dev.fnevents.source.rejected`` event carrying the raw bytes and the reason, to
the EventSource's dead-letter topic ``{namespace}-{eventsource}-deadletter`` (or,
without a bus, to ``deadLetterSink``), and counted in
``fnevents_source_rejected_total``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.bindings.structured import to_json
from events.bus.contract import EventBus
from events.bus.resilient import publish_until_accepted
from events.cloudevent import CloudEvent
from events.delivery import policy
from events.delivery.sinks import SinkClient
from events.errors import BusError, DeliveryError
from events.manifests.extensions import DEFAULT_DELIVERY, DeliverySpec
from events.observability.console import Console
from events.observability.metrics import Metrics
from events.observability.recent import RecentEvents
from sources.contract import Outlet, SourceIdentity

REJECTED_TYPE = "dev.fnevents.source.rejected"


@dataclass
class OutletPlan:
    identity: SourceIdentity
    bus: EventBus | None
    topic: str
    dead_letter_topic: str
    sink_url: str | None
    dead_letter_url: str | None
    delivery: DeliverySpec = field(default=DEFAULT_DELIVERY)


def build_outlet(
    plan: OutletPlan,
    sinks: SinkClient,
    metrics: Metrics,
    console: Console,
    recent: RecentEvents | None = None,
) -> Outlet:
    """``recent``: the web console's recent events (None, the default, when it is off)."""
    label = plan.identity.label
    where = f"topic:{plan.topic}"
    produced = metrics.tally(metrics.source_events.labels(label))  # per event: lock-free
    published = metrics.tally(metrics.published.labels(label))
    rejected = metrics.source_rejected.labels(label)

    delivery, structured = plan.delivery, plan.delivery.structured

    async def to_sink(url: str, event: CloudEvent) -> bool:
        outcome = await policy.deliver(
            lambda limit: sinks.post(url, event, structured, limit), delivery
        )
        return outcome.delivered

    async def to_sink_or_dead_letter(event: CloudEvent) -> None:
        assert plan.sink_url is not None
        if await to_sink(plan.sink_url, event):
            return
        if plan.dead_letter_url is None or not await to_sink(plan.dead_letter_url, event):
            raise DeliveryError(
                f"source {label}: sink {plan.sink_url} keeps failing and there is no working "
                "deadLetterSink; the source will not commit this input",
                retriable=True,
            )

    async def emit(event: CloudEvent) -> None:
        produced.inc()
        if plan.bus is not None:
            try:
                await publish_until_accepted(
                    plan.bus, plan.topic, event, event.subject, console.warn
                )
            except BusError as exc:  # not retriable: the bus will never take this event
                await reject(to_json(event), f"the bus refused it: {exc}", event.id)
                return
            published.inc()
            if recent is not None:
                recent.seen(where, event, label)
        if plan.sink_url is not None:
            await to_sink_or_dead_letter(event)

    async def reject(raw: bytes, reason: str, origin_id: str) -> None:
        rejected.inc()
        letter = CloudEvent.create(
            REJECTED_TYPE,
            f"/eventsources/{plan.identity.namespace}/{plan.identity.eventsource}",
            bytes(raw),
            id=f"rejected:{origin_id}",
            subject=plan.identity.event,
            fnerrorreason=reason,
        )
        console.warn(f"source {label}: rejected {origin_id}: {reason}")
        if plan.bus is not None:
            await publish_until_accepted(
                plan.bus, plan.dead_letter_topic, letter, None, console.warn
            )
        elif plan.dead_letter_url is None or not await to_sink(plan.dead_letter_url, letter):
            raise DeliveryError(
                f"source {label}: rejected input {origin_id} has no dead letter to go to "
                "(set spec.deadLetterSink)",
                retriable=True,
            )

    return Outlet(emit, reject)
