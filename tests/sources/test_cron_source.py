"""The cron source: event attributes, stable ids, and real-time cadence."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from events.cloudevent import CloudEvent, parse_time
from events.errors import ScheduleError
from sources.contract import Outlet, SourceIdentity
from sources.cron import EVENT_TYPE, CronSource, local_zone

IDENTITY = SourceIdentity("default", "my-eventsource", "tick")
TICK = timedelta(milliseconds=100)


def make(schedule: str, identity: SourceIdentity = IDENTITY, **kwargs: object) -> CronSource:
    return CronSource(identity, SimpleNamespace(schedule=schedule), default_tz=UTC, **kwargs)


Seen = list[tuple[CloudEvent, datetime]]


async def run_for(
    source: CronSource, seconds: float, emit: Callable[[CloudEvent], Awaitable[None]] | None = None
) -> Seen:
    """Run the source for ``seconds`` of real time; return (event, emitted-at) pairs."""
    seen: Seen = []

    async def record(event: CloudEvent) -> None:
        seen.append((event, datetime.now(UTC)))
        if emit is not None:
            await emit(event)

    task = asyncio.create_task(source.run(Outlet(record)))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return seen


def test_event_attributes() -> None:
    event = make("@every 5s").event_for(datetime(2024, 1, 1, 0, 0, 5, 123456, tzinfo=UTC))
    assert event.id == "default/my-eventsource/tick@2024-01-01T00:00:05.123Z"
    assert event.type == EVENT_TYPE == "dev.fnevents.cron.fired"
    assert event.source == (
        "/apis/events.openfunction.io/v1alpha1/namespaces/default/eventsources/my-eventsource"
    )
    assert event.subject == "tick"
    assert event.time == "2024-01-01T00:00:05.123Z"
    assert event.datacontenttype == "application/json"
    assert event.data == {"schedule": "@every 5s", "scheduledTime": "2024-01-01T00:00:05.123Z"}


def test_id_depends_only_on_identity_and_fire_time() -> None:
    fire = datetime(2024, 3, 1, 12, tzinfo=UTC)
    replica_a, replica_b = make("@every 5s"), make("@every 5s")
    same_fire_elsewhere = fire.astimezone(ZoneInfo("Asia/Tokyo"))
    assert replica_a.event_for(fire) == replica_b.event_for(same_fire_elsewhere)
    other_event = SourceIdentity("default", "my-eventsource", "tock")
    assert make("@every 5s", other_event).event_for(fire).id != replica_a.event_for(fire).id
    assert replica_a.event_for(fire + TICK).id != replica_a.event_for(fire).id


def test_replicas_started_apart_compute_the_same_fire_times() -> None:
    start = datetime(2024, 3, 1, 12, 0, 1, 250000, tzinfo=UTC)
    for expression in ("@every 5s", "*/5 * * * * *"):
        first = make(expression).schedule.next_after(start)
        second = make(expression).schedule.next_after(start + timedelta(seconds=1.7))
        assert first == second == datetime(2024, 3, 1, 12, 0, 5, tzinfo=UTC)


def test_bad_schedule_fails_at_construction() -> None:
    with pytest.raises(ScheduleError, match=r"field 'hour' \(2nd of 5\) value 25 is out of range"):
        make("0 25 * * *")


def test_kind_and_describe() -> None:
    source = make("@every 5s")
    assert CronSource.kind == "cron"
    assert source.describe() == "cron default/my-eventsource/tick (every 5s)"


def test_schedules_use_the_local_zone_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    source = CronSource(IDENTITY, SimpleNamespace(schedule="0 9 * * *"))
    assert source.schedule.tz is ZoneInfo("Asia/Tokyo")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("tz", "expected"), [("Europe/Berlin", ZoneInfo("Europe/Berlin")), ("", UTC), ("Nope/X", UTC)]
)
def test_local_zone_follows_tz_like_go(
    monkeypatch: pytest.MonkeyPatch, tz: str, expected: object
) -> None:
    monkeypatch.setenv("TZ", tz)
    assert local_zone() is expected


async def test_run_emits_on_schedule_without_drift() -> None:
    source = make("@every 100ms")
    seen = await run_for(source, 0.55)
    scheduled = [parse_time(event.time) for event, _ in seen]
    # About 5 fires in 0.55 s; a loaded machine may skip some, which are counted.
    assert 4 <= len(seen) + source.skipped <= 6
    gaps = [later - earlier for earlier, later in pairwise(scheduled)]
    assert all(gap > timedelta(0) and gap % TICK == timedelta(0) for gap in gaps)
    assert sum(gaps, timedelta(0)) == TICK * (len(seen) - 1 + source.skipped)
    emitted = [when for _, when in seen]
    assert all(when >= fire for fire, when in zip(scheduled, emitted, strict=True))  # never early
    assert len({event.id for event, _ in seen}) == len(seen)


async def test_two_replicas_emit_the_same_ids() -> None:
    replica_a, replica_b = make("@every 100ms"), make("@every 100ms")
    seen_a, seen_b = await asyncio.gather(run_for(replica_a, 0.45), run_for(replica_b, 0.45))
    ids_a, ids_b = {e.id for e, _ in seen_a}, {e.id for e, _ in seen_b}
    assert len(ids_a & ids_b) >= 2


async def test_falling_behind_skips_missed_fires_instead_of_bursting() -> None:
    jump = [timedelta(0)]
    source = make("@every 100ms", now=lambda: datetime.now(UTC) + jump[0])

    async def stall_once(event: CloudEvent) -> None:
        if jump[0] == timedelta(0):
            jump[0] = timedelta(seconds=1)  # as if emit took a whole second

    seen = await run_for(source, 0.25, stall_once)
    scheduled = [parse_time(event.time) for event, _ in seen]
    assert len(seen) >= 2
    assert source.skipped >= 9
    # Only the newest due fire after the stall was emitted, then the cadence resumed.
    assert scheduled[1] - scheduled[0] == TICK * (source.skipped + 1)
    assert all(later - earlier == TICK for earlier, later in pairwise(scheduled[1:]))
