"""Tallies (events.observability.metrics ``Tally``, ``LatencyTally``, ``DeliveryTally``) against
prometheus_client's own ``inc``/``observe``: 100,000 generated increments and
observations go to two registries, one through tallies and one through the series
themselves, with readings (scrapes, console readings) at random points in between; every
reading of the two must be identical, ``/metrics`` text included (apart from the
``_created`` timestamps, which tell when each registry was built)."""

from __future__ import annotations

import math
import random

from events.app.console.stats import read
from events.observability.metrics import LATENCY_BUCKETS, Metrics

CASES = 100_000
TRIGGERS = ["ns/a", "ns/b", "other/c"]
EDGES = [0.0, -0.001, math.inf, math.nan, 1e-9, 1e6, *LATENCY_BUCKETS]


def _text(metrics: Metrics) -> list[str]:
    return [
        line
        for line in metrics.exposition().decode().splitlines()
        if "_created" not in line.split("{")[0]
    ]


def _seconds(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(EDGES)
    if roll < 0.1:  # just either side of a bucket's bound
        return math.nextafter(rng.choice(LATENCY_BUCKETS), rng.choice([0.0, math.inf]))
    return rng.expovariate(1 / 0.01)


def test_tallies_read_the_same_as_the_series() -> None:
    rng = random.Random(13)
    fast, plain = Metrics(), Metrics()
    readings = 0
    for case in range(CASES):
        trigger = rng.choice(TRIGGERS)
        subscriber = str(rng.randint(0, 2))
        roll = rng.random()
        if roll < 0.2:
            fast.tally(fast.trigger_events.labels(trigger, subscriber)).inc()
            plain.trigger_events.labels(trigger, subscriber).inc()
        elif roll < 0.4:
            seconds = _seconds(rng)
            fast.latency_tally(fast.latency.labels(trigger)).observe(seconds)
            plain.latency.labels(trigger).observe(seconds)
        else:  # a delivery: its subscriber's count and its trigger's latency at once
            seconds = _seconds(rng)
            delivered = fast.delivered.labels(trigger, subscriber)
            fast.delivery_tally(delivered, fast.latency.labels(trigger)).delivered(seconds)
            plain.delivered.labels(trigger, subscriber).inc()
            plain.latency.labels(trigger).observe(seconds)
        if rng.random() < 0.001 or case == CASES - 1:
            readings += 1
            assert _text(fast) == _text(plain), case
            assert read(fast.registry) == read(plain.registry), case
    assert readings > 50
    text = "\n".join(_text(fast))
    assert "fnevents_delivery_latency_seconds_sum" in text
    assert "fnevents_delivered_events_total" in text
    assert "fnevents_trigger_events_total" in text


def test_one_tally_per_series_and_the_scrape_reads_it() -> None:
    metrics = Metrics()
    series = metrics.latency.labels("ns/a")
    assert metrics.latency_tally(series) is metrics.latency_tally(series)
    counter = metrics.trigger_events.labels("ns/a", "in")
    metrics.tally(counter).inc()
    metrics.tally(counter).inc()
    value = metrics.registry.get_sample_value(
        "fnevents_trigger_events_total", {"trigger": "ns/a", "input": "in"}
    )
    assert value == 2.0
