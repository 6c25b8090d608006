"""The recent-events ring is bounded however many events pass."""

from __future__ import annotations

from events.cloudevent import CloudEvent
from events.observability.recent import DELIVERED, RETRIED, RecentEvents


def event(n: int) -> CloudEvent:
    return CloudEvent.create(type="t", source="/s", id=f"e{n}", data={"n": "x" * 1000})


def test_the_ring_keeps_the_newest_and_trims_data() -> None:
    recent = RecentEvents(size=10, outcomes_per_event=3, data_chars=50)
    for n in range(1000):
        recent.seen("trigger:default/t", event(n))
        for _ in range(5):
            recent.outcome("trigger:default/t", f"e{n}", "default/t#0", RETRIED, "boom")
    assert len(recent) == 10
    latest = recent.latest()
    assert [e["id"] for e in latest] == [f"e{n}" for n in range(999, 989, -1)]
    assert len(latest[0]["outcomes"]) == 3
    assert len(latest[0]["data"]) <= 51
    assert recent.last_errors == {"default/t#0": "boom"}


def test_outcomes_are_per_place() -> None:
    recent = RecentEvents()
    recent.seen("topic:a", event(1))
    recent.seen("trigger:default/t", event(1))
    recent.outcome("trigger:default/t", "e1", "default/t#0", DELIVERED, "http://x")
    assert recent.latest("topic:a")[0]["outcomes"] == []
    assert recent.latest("trigger:default/t")[0]["outcomes"][0]["outcome"] == DELIVERED
    recent.outcome("trigger:default/t", "gone", "default/t#0", DELIVERED)  # ignored
