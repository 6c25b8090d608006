"""Dapr cron binding schedules: parse them and compute when they fire next.

Dapr's cron binding uses robfig/cron v3 with ``SecondOptional | Minute | Hour |
Dom | Month | Dow | Descriptor``. This module accepts the same language:

* 5 fields ``minute hour day-of-month month day-of-week``, or 6 with seconds
  first. A field is a comma list of ``*``, ``?``, ``n``, ``a-b``, ``*/s``,
  ``a-b/s`` or ``a/s`` (``a`` up to the field's maximum, step ``s``). Months
  take ``JAN``-``DEC`` and days of week ``SUN``-``SAT``, in any case. Days of
  week are 0-6, so ``7`` is rejected, as in robfig. Like robfig, ``?`` means
  ``*`` in any field, and empty list items (``1,,2``) are ignored.
* If day-of-month and day-of-week are both restricted, a day matches when
  EITHER matches (classic cron). ``*``, ``?`` and ``*/1`` are unrestricted;
  ``*/2`` is restricted (robfig's "star bit").
* A ``CRON_TZ=Area/City`` or ``TZ=Area/City`` prefix picks the time zone.
* ``@yearly @annually @monthly @weekly @daily @midnight @hourly``, and
  ``@every <Go duration>`` (``500ms``, ``5s``, ``1m30s``, ``1.5h``).

Where we differ from robfig, on purpose:

* The default zone is explicit: robfig uses ``time.Local``, :func:`parse`
  uses ``default_tz``, or UTC when that is None, so parsing is reproducible.
  The cron source passes the process's local zone, as Dapr would use.
* ``@every`` keeps sub-second intervals as written (``@every 500ms`` fires
  twice a second). robfig rounds down to whole seconds, with a 1 s floor. Our
  minimum is 1 ms, at microsecond resolution. Fires are aligned to
  ``EverySchedule.anchor`` (the Unix epoch), not to the start time, so every
  replica and every restart computes the same fire times and event ids.
* A schedule that can never fire (``0 0 30 2 *``) is an error at parse time.
  robfig accepts it and never runs it.

Daylight saving time: a schedule fires at every instant whose wall-clock
reading in its zone matches. Wall times skipped by spring-forward never fire
(``30 2 * * *`` skips that day). Wall times repeated by fall-back fire once per
offset (``30 1 * * *`` fires twice). robfig behaves the same way.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import NoReturn, Protocol
from zoneinfo import ZoneInfo

from events.durations import GO_FORMAT_HINT, parse_go_duration
from events.errors import ScheduleError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_INTERVAL = timedelta(milliseconds=1)
_SECOND, _MINUTE, _HOUR = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
# Feb 29 can be 8 years away (2096 -> 2104); past this, give up rather than loop.
_SEARCH_YEARS = 10
_FIELD_COUNT = (
    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first)"
)
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}  # fmt: skip
_ZONE_PREFIX = re.compile(r"(CRON_TZ|TZ)=(\S*)\s*")
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th")

Fail = Callable[[str], NoReturn]


class Schedule(Protocol):
    """When a source fires. Both schedule kinds are immutable and thread-safe."""

    expression: str

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after aware ``t``, in ``t``'s time zone."""
        ...

    def describe(self) -> str:
        """One human line, for startup output."""
        ...


@dataclass(frozen=True)
class CronSchedule:
    """A field schedule: the sets of values each field allows, in one time zone."""

    expression: str
    tz: tzinfo
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    dom_star: bool
    dow_star: bool

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after aware ``t``, in ``t``'s time zone.

        robfig's algorithm: advance month, day, hour, minute, second, each jump
        to the start of the next unit, so a yearly schedule takes a few dozen
        steps. Hours and below move in absolute time, so DST gaps and repeats
        behave as the module docstring says.
        """
        _require_aware(t)
        u = _shift(t.astimezone(self.tz).replace(microsecond=0), _SECOND)
        last_year = u.year + _SEARCH_YEARS
        while u.year <= last_year:
            later = self._advance(u)
            if later is None:
                return u.astimezone(t.tzinfo)
            # Odd zones (offset changes at midnight, half hours) could send a jump backwards.
            u = later if later > u else _shift(u, _SECOND)
        raise ScheduleError(self.expression, f"does not fire within {_SEARCH_YEARS} years of {t}")

    def describe(self) -> str:
        return f"cron '{self.expression}' in {getattr(self.tz, 'key', None) or self.tz}"

    def _advance(self, u: datetime) -> datetime | None:
        """None if ``u`` fires, else the start of the next unit that might."""
        if u.month not in self.months:
            year, month = (u.year + 1, 1) if u.month == 12 else (u.year, u.month + 1)
            return _wall(datetime(year, month, 1), self.tz)
        if not self._day_matches(u):
            return _wall(datetime(u.year, u.month, u.day) + timedelta(days=1), self.tz)
        if u.hour not in self.hours:
            return _shift(u.replace(minute=0, second=0), _HOUR)
        if u.minute not in self.minutes:
            return _shift(u.replace(second=0), _MINUTE)
        if u.second not in self.seconds:
            return _shift(u, _SECOND)
        return None

    def _day_matches(self, u: datetime) -> bool:
        dom = u.day in self.days
        dow = u.isoweekday() % 7 in self.weekdays
        # robfig: an unrestricted field means AND (so only the other one counts), else OR.
        return (dom and dow) if self.dom_star or self.dow_star else (dom or dow)


@dataclass(frozen=True)
class EverySchedule:
    """``@every <duration>``: fires at ``anchor + k * interval`` for every whole ``k``.

    So ``next_after(fire) == fire + interval``, robfig's "next = prev + delay",
    and the phase does not depend on when a process started.
    """

    expression: str
    interval: timedelta
    anchor: datetime = EPOCH

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after aware ``t``, in ``t``'s time zone."""
        _require_aware(t)
        periods = (t - self.anchor) // self.interval + 1
        return (self.anchor + periods * self.interval).astimezone(t.tzinfo)

    def describe(self) -> str:
        return f"every {self.interval.total_seconds():g}s"


def parse(expression: str, default_tz: tzinfo | None = None) -> Schedule:
    """Parse a Dapr cron binding schedule; raise :class:`ScheduleError` if it is wrong.

    ``default_tz`` (UTC if None) applies unless the expression has a
    ``CRON_TZ=``/``TZ=`` prefix.
    """
    if not isinstance(expression, str):
        raise ScheduleError(repr(expression), "must be a string")
    text, tz = expression.strip(), default_tz
    if prefix := _ZONE_PREFIX.match(text):
        text, tz = text[prefix.end() :], _zone(expression, prefix[2])
    if tz is None:
        tz = UTC
    if text.startswith("@"):
        return _descriptor(expression, text, tz)
    parts = text.split()
    if len(parts) not in (5, 6):
        raise ScheduleError(expression, f"{_FIELD_COUNT}, got {len(parts)}")
    return _cron(expression, parts, tz)


def _descriptor(expression: str, text: str, tz: tzinfo) -> Schedule:
    name, *args = text.split()
    name = name.lower()
    if name == "@every":
        if len(args) != 1:
            raise ScheduleError(expression, "@every takes one duration, e.g. '@every 5s'")
        return _every(expression, args[0])
    if name in _DESCRIPTORS and not args:
        return _cron(expression, _DESCRIPTORS[name].split(), tz)
    known = ", ".join([*_DESCRIPTORS, "@every <duration>"])
    raise ScheduleError(expression, f"unknown descriptor '{text}'; known: {known}")


def _every(expression: str, text: str) -> EverySchedule:
    try:
        interval = timedelta(seconds=parse_go_duration(text))
    except (ValueError, OverflowError):
        raise ScheduleError(
            expression,
            f"invalid duration '{text}'; expected {GO_FORMAT_HINT} (units ns, us, ms, s, m, h)",
        ) from None
    if interval < MIN_INTERVAL:
        raise ScheduleError(expression, f"@every interval '{text}' must be at least 1ms")
    return EverySchedule(expression, interval)


def _cron(expression: str, parts: list[str], tz: tzinfo) -> CronSchedule:
    given = len(parts)
    if given == 5:
        parts = ["0", *parts]  # robfig's SecondOptional: seconds default to 0
    sets: list[frozenset[int]] = []
    stars: list[bool] = []
    for index, (spec, text) in enumerate(zip(_FIELDS, parts, strict=True)):
        where = f"field '{spec.name}' ({_ORDINALS[index - 6 + given]} of {given})"
        values, star = _parse_field(text, spec, partial(_fail, expression, where))
        sets.append(values)
        stars.append(star)
    schedule = CronSchedule(expression, tz, *sets, dom_star=stars[3], dow_star=stars[5])
    _check_can_fire(schedule)
    return schedule


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def allowed(self) -> str:
        if not self.names:
            return f"{self.low}-{self.high}"
        first, *_, last = self.names
        return f"{self.low}-{self.high} or {first.upper()}-{last.upper()}"


_MONTHS = {n: i for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}  # noqa: SIM905
_WEEKDAYS = {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}  # noqa: SIM905
_FIELDS = (
    _Field("second", 0, 59), _Field("minute", 0, 59), _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31), _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _WEEKDAYS, " (Sunday is 0 or SUN)"),
)  # fmt: skip


def _parse_field(text: str, spec: _Field, fail: Fail) -> tuple[frozenset[int], bool]:
    """The values one field allows, and whether it is unrestricted (robfig's star bit)."""
    values: set[int] = set()
    star = False
    for item in filter(None, text.split(",")):  # robfig skips empty items
        item_values, item_star = _parse_item(item, spec, fail)
        values |= item_values
        star = star or item_star
    if not values:
        fail(f"'{text}' has no values; allowed: {spec.allowed}")
    return frozenset(values), star


def _parse_item(item: str, spec: _Field, fail: Fail) -> tuple[frozenset[int], bool]:
    span, slash, step_text = item.partition("/")
    if "/" in step_text:
        fail(f"'{item}' has too many '/'")
    if span in ("*", "?"):
        low, high, dash, star = spec.low, spec.high, "", True
    else:
        first, dash, last = span.partition("-")
        if "-" in last:
            fail(f"'{item}' has too many '-'")
        low = _number(first, item, spec, fail)
        high = _number(last, item, spec, fail) if dash else low
        star = False
    step = 1
    if slash:
        if not step_text.isascii() or not step_text.isdigit() or int(step_text) == 0:
            fail(f"step '{step_text}' in '{item}' must be a positive whole number")
        step = int(step_text)
        high = high if dash else spec.high  # robfig: 'a/n' runs from a to the maximum
        star = star and step == 1
    if low > high:
        fail(f"range '{span}' is backwards: {low} comes after {high}")
    return frozenset(range(low, high + 1, step)), star


def _number(token: str, item: str, spec: _Field, fail: Fail) -> int:
    context = f" in '{item}'" if item != token else ""
    if token.lower() in spec.names:
        return spec.names[token.lower()]
    if not token.isascii() or not token.isdigit():
        kind = "a number or name" if spec.names else "a number"
        fail(f"value '{token}'{context} is not {kind}; allowed: {spec.allowed}")
    value = int(token)
    if not spec.low <= value <= spec.high:
        fail(f"value {value}{context} is out of range {spec.low}-{spec.high}{spec.note}")
    return value


def _fail(expression: str, where: str, problem: str) -> NoReturn:
    raise ScheduleError(expression, f"{where} {problem}")


def _check_can_fire(s: CronSchedule) -> None:
    # Only day-of-month alone can be impossible: any weekday comes round every week.
    if s.dom_star or not s.dow_star:
        return
    if any(day <= calendar.monthrange(2000, month)[1] for month in s.months for day in s.days):
        return
    days, months = (",".join(map(str, sorted(v))) for v in (s.days, s.months))
    raise ScheduleError(
        s.expression, f"never fires: day-of-month {days} does not occur in month {months}"
    )


def _zone(expression: str, name: str) -> tzinfo:
    zone = try_zone(name)
    if zone is None:
        raise ScheduleError(
            expression, f"unknown time zone '{name}'; use an IANA name such as Europe/Berlin"
        )
    return zone


def try_zone(name: str) -> tzinfo | None:
    """The IANA time zone ``name``, or None if there is no such zone."""
    try:
        return ZoneInfo(name) if name else None
    except (KeyError, ValueError, OSError):  # not found, malformed key, a directory
        return None


def _shift(u: datetime, delta: timedelta) -> datetime:
    """``u + delta`` in absolute time (aware ``+`` would add wall-clock time)."""
    return (u.astimezone(UTC) + delta).astimezone(u.tzinfo)


def _wall(naive: datetime, tz: tzinfo) -> datetime:
    """The first instant reading ``naive`` in ``tz``.

    If DST skips that reading, the offset from before the gap is used, which lands after it.
    """
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got naive {t.isoformat()}")
