"""The ``cron`` source: one CloudEvent each time a schedule fires.

Settings: ``schedule``, in Dapr's cron binding syntax (see :mod:`sources.cronspec`).
It is parsed when the source is built, so a bad schedule fails at load time.
Without a ``CRON_TZ=`` prefix, schedules use the process's local time zone,
found as Go finds ``time.Local`` (Dapr's cron binding uses that). Tests can pin
the zone with ``default_tz``.

Each fire is one event:

* ``type``: ``dev.fnevents.cron.fired``.
* ``source``: ``/apis/events.openfunction.io/v1alpha1/namespaces/{ns}/eventsources/{es}``,
  the EventSource's Kubernetes API path. It is a URI-reference that names the producer.
* ``subject``: the event name from the manifest.
* ``id``: ``{ns}/{es}/{event}@{time}``. This depends only on the identity and the
  scheduled time, so replicas and restarts give a fire the same id, and
  duplicates can be recognized.
* ``time``: the scheduled (not actual) fire time, RFC 3339 in UTC, to the millisecond.
* ``data``: ``{"schedule": <expression>, "scheduledTime": <time>}``, as JSON.

Timing: each fire time is computed from the previous *scheduled* time, not from
when the loop woke, so short schedules do not drift. If the source falls behind
by more than one interval (a stalled loop, a slow ``emit``, a suspended
machine), it emits only the latest fire that is due. The older ones are skipped
and counted in ``skipped``, rather than sent in a burst. robfig does not catch up either.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from events.cloudevent import CloudEvent
from sources.contract import Outlet, Source, SourceIdentity
from sources.cronspec import Schedule, parse, try_zone

EVENT_TYPE = "dev.fnevents.cron.fired"
# Re-read the clock at least this often, so a wall-clock jump or a suspend is noticed.
_MAX_SLEEP = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CronSource(Source):
    """Emits one event per fire of ``settings.schedule``; runs until cancelled.

    ``now`` is the wall clock, which tests can replace. ``skipped`` counts
    fires dropped because the source fell behind.
    """

    kind: ClassVar[str] = "cron"

    def __init__(
        self,
        identity: SourceIdentity,
        settings: Any,
        *,
        now: Callable[[], datetime] = _utc_now,
        default_tz: tzinfo | None = None,
    ) -> None:
        super().__init__(identity, settings)
        self.schedule: Schedule = parse(settings.schedule, default_tz or local_zone())
        self.skipped = 0
        self._now = now

    async def run(self, outlet: Outlet) -> None:
        """Sleep until each fire time, then emit its event. Never returns; cancel it."""
        due = self.schedule.next_after(self._now())
        while True:
            await self._sleep_until(due)
            due = self._latest_due(due)
            await outlet.emit(self.event_for(due))
            due = self.schedule.next_after(due)

    def event_for(self, scheduled: datetime) -> CloudEvent:
        """The event for the fire at ``scheduled``: the same for every replica."""
        stamp = scheduled.astimezone(UTC).isoformat(timespec="milliseconds")
        stamp = stamp.replace("+00:00", "Z")
        return CloudEvent(
            id=f"{self.identity.label}@{stamp}",
            source=source_uri(self.identity),
            type=EVENT_TYPE,
            subject=self.identity.event,
            time=stamp,
            datacontenttype="application/json",
            data={"schedule": self.schedule.expression, "scheduledTime": stamp},
        )

    def describe(self) -> str:
        return f"{super().describe()} ({self.schedule.describe()})"

    async def _sleep_until(self, due: datetime) -> None:
        # Check the wall clock after each sleep. The loop's monotonic clock and
        # the wall clock drift apart, and the loop may wake a moment early.
        while True:
            delay = (due - self._now()).total_seconds()
            if delay <= 0:
                return
            await asyncio.sleep(min(delay, _MAX_SLEEP))

    def _latest_due(self, due: datetime) -> datetime:
        """The newest fire time that has passed, counting older missed ones as skipped."""
        now = self._now()
        following = self.schedule.next_after(due)
        while following <= now:
            self.skipped += 1
            due, following = following, self.schedule.next_after(following)
        return due


def local_zone() -> tzinfo:
    """The process's time zone, found as Go finds ``time.Local``: ``TZ``, then /etc/localtime."""
    name = os.environ.get("TZ")
    if name is not None:  # Go: an empty or unknown TZ means UTC
        return try_zone(name.removeprefix(":")) or UTC
    _, marker, key = os.path.realpath("/etc/localtime").partition("/zoneinfo/")
    if marker and (zone := try_zone(key)):
        return zone
    try:  # a copied file rather than a link into the zoneinfo tree
        with open("/etc/localtime", "rb") as tzfile:
            return ZoneInfo.from_file(tzfile, key="localtime")
    except (OSError, ValueError):
        return UTC


def source_uri(identity: SourceIdentity) -> str:
    """The CloudEvents ``source`` of an EventSource's events."""
    return (
        "/apis/events.openfunction.io/v1alpha1"
        f"/namespaces/{identity.namespace}/eventsources/{identity.eventsource}"
    )
