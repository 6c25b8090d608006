"""Prometheus metrics, in a private registry served at ``/metrics``.

Names follow Prometheus conventions; labels are the resource labels users know
(``source`` = ``namespace/eventsource/event``, ``trigger`` = ``namespace/name``,
``subscriber`` = its index in ``spec.subscribers``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.source_events = Counter(
            "fnevents_source_events", "Events a source produced", ["source"], registry=r
        )
        self.published = Counter(
            "fnevents_published_events", "Events a source put on the bus", ["source"], registry=r
        )
        self.source_rejected = Counter(
            "fnevents_source_rejected",
            "Input a source could not turn into an event, sent to its dead letter",
            ["source"],
            registry=r,
        )
        self.source_errors = Counter(
            "fnevents_source_errors", "Errors a source reported", ["source"], registry=r
        )
        self.trigger_events = Counter(
            "fnevents_trigger_events", "Events a trigger received", ["trigger", "input"], registry=r
        )
        self.delivered = Counter(
            "fnevents_delivered_events",
            "Events a subscriber delivered",
            ["trigger", "subscriber"],
            registry=r,
        )
        self.failed_attempts = Counter(
            "fnevents_failed_delivery_attempts",
            "Delivery attempts that failed (and may be retried)",
            ["trigger", "subscriber"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "fnevents_dead_lettered_events",
            "Events sent to a dead letter after retries ran out",
            ["trigger", "subscriber"],
            registry=r,
        )
        self.filtered = Counter(
            "fnevents_filtered_events",
            "Events a trigger's filter dropped (where: inputs.<name> or subscribers[<i>])",
            ["trigger", "where"],
            registry=r,
        )
        self.filter_errors = Counter(
            "fnevents_filter_errors",
            "Filter evaluations that failed (a missing field, a wrong type); each is no match",
            ["trigger", "where"],
            registry=r,
        )
        self.replies = Counter(
            "fnevents_reply_events",
            "CloudEvents a sink answered with, published to the subscriber's reply topic",
            ["trigger", "subscriber"],
            registry=r,
        )
        self.invalid_replies = Counter(
            "fnevents_invalid_replies",
            "Sink answers that claimed to be a CloudEvent but did not decode (dropped)",
            ["trigger", "subscriber"],
            registry=r,
        )
        self.latency = Histogram(
            "fnevents_delivery_latency_seconds",
            "From a trigger receiving an event to the subscriber having it (retries included)",
            ["trigger"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        self.backlog = Gauge(
            "fnevents_backlog",
            "Events waiting on the broker for a consumer group: not yet delivered plus "
            "delivered and not yet acked (buses that can tell: Redis, Kafka, JetStream, "
            "in-memory), read every few seconds",
            ["topic", "group"],
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
