"""Prometheus metrics, in a private registry served at ``/metrics``.

Names follow Prometheus conventions; labels are the resource labels users know
(``source`` = ``namespace/eventsource/event``, ``trigger`` = ``namespace/name``,
``subscriber`` = its index in ``spec.subscribers``).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

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


class Tally:
    """The increments of one counter series, kept as a plain number between readings.

    prometheus_client takes a lock on every increment; a series counted once per event
    on the hot path is tallied here instead and added to its series whenever the registry
    is read (a scrape, the console), so every reading shows the same figures as before.
    Not thread-safe: increment and read it from the event loop's thread, as fnevents does.
    """

    __slots__ = ("_series", "count")

    def __init__(self, series: Any) -> None:
        self._series = series
        self.count = 0

    def inc(self) -> None:
        self.count += 1

    def flush(self) -> None:
        if self.count:
            count, self.count = self.count, 0
            self._series.inc(count)


class LatencyTally:
    """The observations of one histogram series, kept as plain numbers between readings.

    It owns the series' sum (observations are added one by one in the same order, so the
    float is the one prometheus_client would have) and counts per bucket, found by
    bisection instead of a scan; readings flush them into the series.
    """

    __slots__ = ("_bounds", "_buckets", "_counts", "_series", "sum")

    def __init__(self, series: Any) -> None:
        self._series = series
        # prometheus_client's per-series values; pinned by tests/fastpaths/test_p2b_metrics.py
        self._buckets, self._bounds = series._buckets, list(series._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self.sum = series._sum.get()

    def observe(self, seconds: float) -> None:
        if seconds != seconds:  # NaN: no bucket holds it (as in prometheus_client)
            self.sum += seconds
            return
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self.sum += seconds

    def flush(self) -> None:
        self._series._sum.set(self.sum)
        counts = self._counts
        for i, count in enumerate(counts):
            if count:
                counts[i] = 0
                self._buckets[i].inc(count)


class DeliveryTally(Tally):
    """One subscriber's delivered count and, in the same call, its trigger's latency."""

    __slots__ = ("_latency",)

    def __init__(self, series: Any, latency: LatencyTally) -> None:
        super().__init__(series)
        self._latency = latency

    def delivered(self, seconds: float) -> None:
        self.count += 1
        latency = self._latency  # LatencyTally.observe, without a second call
        if seconds == seconds:  # NaN goes in no bucket
            latency._counts[bisect_left(latency._bounds, seconds)] += 1
        latency.sum += seconds


class _Flush:
    """Registered first, so collecting the registry flushes every tally before the
    series are read."""

    def __init__(self) -> None:
        self.tallies: dict[int, Tally | LatencyTally] = {}

    def collect(self) -> list[Any]:
        for tally in self.tallies.values():
            tally.flush()
        return []


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._flush = _Flush()
        r.register(self._flush)  # before every series: see _Flush
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

    def tally(self, series: Any) -> Tally:
        """A hot-path counter for ``series`` (a labelled child of a Counter here)."""
        return self._tally(series, Tally)

    def latency_tally(self, series: Any) -> LatencyTally:
        """A hot-path histogram for ``series`` (a labelled child of ``latency``); one per
        series, since it owns the series' sum."""
        return self._tally(series, LatencyTally)

    def delivery_tally(self, delivered: Any, latency: Any) -> DeliveryTally:
        """A hot-path counter for ``delivered`` (a child of ``delivered``) that also
        observes into ``latency`` (a child of ``latency``)."""
        return self._tally(delivered, DeliveryTally, self.latency_tally(latency))

    def _tally(self, series: Any, kind: type, *more: Any) -> Any:
        tally = self._flush.tallies.get(id(series))
        if tally is None:
            tally = self._flush.tallies[id(series)] = kind(series, *more)
        if type(tally) is not kind:
            raise TypeError(f"{series} is tallied as a {type(tally).__name__} already")
        return tally

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
