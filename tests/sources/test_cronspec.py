"""Cron schedules: next fire times worked out by hand, and every error message."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from events.errors import FnEventsError, ScheduleError
from sources.cronspec import CronSchedule, EverySchedule, parse

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# 2024-01-01 is a Monday; Feb 1 2024 a Thursday. (expression, after, next fire), UTC unless a
# prefix says otherwise.
FIRES = [
    # 5 fields: seconds are 0
    ("* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
    ("* * * * *", "2024-01-01T00:00:30.5Z", "2024-01-01T00:01:00Z"),
    # 6 fields: seconds first
    ("* * * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"),
    ("* * * * * *", "2024-01-01T00:00:00.999Z", "2024-01-01T00:00:01Z"),
    ("30 * * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:30Z"),
    ("0 0 0 1 1 *", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    # steps, ranges, a/n (a up to the maximum), lists
    ("*/15 * * * * *", "2024-01-01T00:00:14Z", "2024-01-01T00:00:15Z"),
    ("*/15 * * * * *", "2024-01-01T00:00:45Z", "2024-01-01T00:01:00Z"),
    ("0 */5 * * * *", "2024-01-01T00:07:00Z", "2024-01-01T00:10:00Z"),
    ("5-10/2 * * * *", "2024-01-01T00:09:00Z", "2024-01-01T01:05:00Z"),
    ("10/20 * * * *", "2024-01-01T00:11:00Z", "2024-01-01T00:30:00Z"),
    ("10/20 * * * *", "2024-01-01T00:50:00Z", "2024-01-01T01:10:00Z"),
    ("0 9-17 * * *", "2024-01-01T17:30:00Z", "2024-01-02T09:00:00Z"),
    ("0,30 8,20 * * *", "2024-01-01T08:30:00Z", "2024-01-01T20:00:00Z"),
    ("15,45 1-2,22 * * *", "2024-01-01T02:45:00Z", "2024-01-01T22:15:00Z"),
    ("1,,2 * * * *", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"),  # robfig skips empties
    # month ends, Feb 29, year wrap
    ("0 0 1 * *", "2024-01-15T00:00:00Z", "2024-02-01T00:00:00Z"),
    ("0 0 31 * *", "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z"),
    ("0 0 31 * *", "2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"),
    ("0 0 30 * *", "2024-01-30T00:00:00Z", "2024-03-30T00:00:00Z"),
    ("0 0 29 2 *", "2023-03-01T00:00:00Z", "2024-02-29T00:00:00Z"),
    ("0 0 29 2 *", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"),
    ("0 0 29 2 *", "2097-01-01T00:00:00Z", "2104-02-29T00:00:00Z"),  # 2100 is not leap
    ("59 23 31 12 *", "2024-01-01T00:00:00Z", "2024-12-31T23:59:00Z"),
    ("59 23 31 12 *", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"),
    ("0 0 1 jan-mar *", "2024-03-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    # names, any case
    ("0 12 * JAN,jul *", "2024-01-31T12:00:00Z", "2024-07-01T12:00:00Z"),
    ("0 0 * * MON-FRI", "2024-01-05T12:00:00Z", "2024-01-08T00:00:00Z"),
    ("0 0 * * sun", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
    ("0 0 * * 0", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
    ("0 0 * * Sat,sun", "2024-01-01T00:00:00Z", "2024-01-06T00:00:00Z"),
    # day-of-month and day-of-week: OR when both are restricted
    ("0 0 13 * *", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"),
    ("0 0 13 * ?", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"),
    ("0 0 ? * FRI", "2024-01-06T00:00:00Z", "2024-01-12T00:00:00Z"),
    ("0 0 13 * FRI", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
    ("0 0 13 * FRI", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"),
    ("0 0 13 * FRI", "2024-01-13T00:00:00Z", "2024-01-19T00:00:00Z"),
    ("0 0 */10 * MON", "2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"),  # */10 restricts
    ("0 0 */10 * MON", "2024-01-08T00:00:00Z", "2024-01-11T00:00:00Z"),
    ("0 0 */1 * MON", "2024-01-08T00:00:00Z", "2024-01-15T00:00:00Z"),  # */1 does not
    ("0 0 30 2 MON", "2024-01-01T00:00:00Z", "2024-02-05T00:00:00Z"),  # Feb 30 never; Mondays do
    # descriptors
    ("@yearly", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    ("@annually", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    ("@monthly", "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z"),
    ("@weekly", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
    ("@daily", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
    ("@midnight", "2024-02-28T23:59:59Z", "2024-02-29T00:00:00Z"),
    ("@hourly", "2024-01-01T00:59:59.999Z", "2024-01-01T01:00:00Z"),
    ("@Daily", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
    # time zone prefixes
    ("CRON_TZ=America/New_York 0 9 * * *", "2024-01-01T00:00:00Z", "2024-01-01T14:00:00Z"),
    ("TZ=Asia/Tokyo 0 9 * * *", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
    ("CRON_TZ=Asia/Kolkata 0 0 * * *", "2024-01-01T00:00:00Z", "2024-01-01T18:30:00Z"),
    ("CRON_TZ=Asia/Kolkata 0 * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:30:00Z"),
    # New York springs forward 2024-03-10 02:00 EST -> 03:00 EDT: 02:30 does not exist that day
    ("CRON_TZ=America/New_York 30 2 * * *", "2024-03-09T08:00:00Z", "2024-03-11T06:30:00Z"),
    ("CRON_TZ=America/New_York 0 * * * *", "2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z"),
    ("CRON_TZ=America/New_York 0 3 * * *", "2024-03-10T05:00:00Z", "2024-03-10T07:00:00Z"),
    # ... and falls back 2024-11-03 02:00 EDT -> 01:00 EST: 01:xx happens twice
    ("CRON_TZ=America/New_York 30 1 * * *", "2024-11-03T04:00:00Z", "2024-11-03T05:30:00Z"),
    ("CRON_TZ=America/New_York 30 1 * * *", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"),
    ("CRON_TZ=America/New_York 30 1 * * *", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"),
    ("CRON_TZ=America/New_York */30 * * * *", "2024-11-03T05:45:00Z", "2024-11-03T06:00:00Z"),
    ("CRON_TZ=America/New_York 0 2 * * *", "2024-11-03T04:00:00Z", "2024-11-03T07:00:00Z"),
    # Berlin: forward 2024-03-31 02:00 CET -> 03:00 CEST, back 2024-10-27 03:00 CEST -> 02:00 CET
    ("TZ=Europe/Berlin 0 30 2 * * *", "2024-03-30T12:00:00Z", "2024-04-01T00:30:00Z"),
    ("CRON_TZ=Europe/Berlin @daily", "2024-03-30T23:30:00Z", "2024-03-31T22:00:00Z"),
    ("CRON_TZ=Europe/Berlin 0 30 2 * * *", "2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z"),
    ("CRON_TZ=Europe/Berlin 0 30 2 * * *", "2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z"),
    # @every: multiples of the interval since the Unix epoch
    ("@every 500ms", "2024-01-01T00:00:00.200Z", "2024-01-01T00:00:00.500Z"),
    ("@every 500ms", "2024-01-01T00:00:00.500Z", "2024-01-01T00:00:01Z"),
    ("@every 5s", "2024-01-01T00:00:03Z", "2024-01-01T00:00:05Z"),
    ("@every 5s", "2024-01-01T00:00:05Z", "2024-01-01T00:00:10Z"),
    ("@every 1m30s", "2024-01-01T00:00:00Z", "2024-01-01T00:01:30Z"),
    ("@every 1m30s", "2024-01-01T00:01:00Z", "2024-01-01T00:01:30Z"),
    ("@every 1.5s", "2024-01-01T00:00:00.100Z", "2024-01-01T00:00:01.500Z"),
    ("@every 2h45m", "2024-01-01T00:00:00Z", "2024-01-01T02:45:00Z"),
    ("@every 1500us", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.001500Z"),
    ("CRON_TZ=Europe/Berlin @every 5s", "2024-01-01T00:00:03Z", "2024-01-01T00:00:05Z"),
]


@pytest.mark.parametrize(("expression", "after", "expected"), FIRES)
def test_next_fire_time(expression: str, after: str, expected: str) -> None:
    assert parse(expression).next_after(at(after)) == at(expected)


HINT = "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first)"
ERRORS = [
    ("0 25 * * *", "field 'hour' (2nd of 5) value 25 is out of range 0-23"),
    ("0 0 25 * * *", "field 'hour' (3rd of 6) value 25 is out of range 0-23"),
    ("60 * * * *", "field 'minute' (1st of 5) value 60 is out of range 0-59"),
    ("60 * * * * *", "field 'second' (1st of 6) value 60 is out of range 0-59"),
    ("* * 0 * *", "field 'day-of-month' (3rd of 5) value 0 is out of range 1-31"),
    ("* * 32 * *", "field 'day-of-month' (3rd of 5) value 32 is out of range 1-31"),
    ("* * * 13 *", "field 'month' (4th of 5) value 13 is out of range 1-12"),
    (
        "* * * * 7",
        "field 'day-of-week' (5th of 5) value 7 is out of range 0-6 (Sunday is 0 or SUN)",
    ),
    ("* * * * * 1-7", "field 'day-of-week' (6th of 6) value 7 in '1-7' is out of range 0-6"),
    ("1-70 * * * *", "field 'minute' (1st of 5) value 70 in '1-70' is out of range 0-59"),
    (
        "* * * FOO *",
        "field 'month' (4th of 5) value 'FOO' is not a number or name; allowed: 1-12 or JAN-DEC",
    ),
    (
        "* * * * MONDAY",
        "field 'day-of-week' (5th of 5) value 'MONDAY' is not a number or name; "
        "allowed: 0-6 or SUN-SAT",
    ),
    ("* MON * * *", "field 'hour' (2nd of 5) value 'MON' is not a number; allowed: 0-23"),
    ("-1 * * * *", "field 'minute' (1st of 5) value '' in '-1' is not a number; allowed: 0-59"),
    ("*-5 * * * *", "field 'minute' (1st of 5) value '*' in '*-5' is not a number"),
    ("5-3 * * * *", "field 'minute' (1st of 5) range '5-3' is backwards: 5 comes after 3"),
    ("1-2-3 * * * *", "field 'minute' (1st of 5) '1-2-3' has too many '-'"),
    ("*/2/3 * * * *", "field 'minute' (1st of 5) '*/2/3' has too many '/'"),
    ("*/0 * * * *", "field 'minute' (1st of 5) step '0' in '*/0' must be a positive whole number"),
    ("*/x * * * *", "field 'minute' (1st of 5) step 'x' in '*/x' must be a positive whole"),
    ("0 0 */ * *", "field 'day-of-month' (3rd of 5) step '' in '*/' must be a positive whole"),
    (", * * * *", "field 'minute' (1st of 5) ',' has no values; allowed: 0-59"),
    ("* * * *", f"{HINT}, got 4"),
    ("* * * * * * *", f"{HINT}, got 7"),
    ("", f"{HINT}, got 0"),
    ("   ", f"{HINT}, got 0"),
    ("CRON_TZ=Europe/Berlin", f"{HINT}, got 0"),
    (
        "@fortnightly",
        "unknown descriptor '@fortnightly'; known: @yearly, @annually, @monthly, @weekly, "
        "@daily, @midnight, @hourly, @every <duration>",
    ),
    ("@daily 5", "unknown descriptor '@daily 5'; known: @yearly"),
    ("@every", "@every takes one duration, e.g. '@every 5s'"),
    ("@every 5s 10s", "@every takes one duration, e.g. '@every 5s'"),
    (
        "@every 5x",
        "invalid duration '5x'; expected a Go duration such as '500ms', '5s' or '1m30s' "
        "(units ns, us, ms, s, m, h)",
    ),
    ("@every 5", "invalid duration '5'; expected a Go duration"),
    ("@every 500us", "@every interval '500us' must be at least 1ms"),
    ("@every 0", "@every interval '0' must be at least 1ms"),
    ("@every -5s", "@every interval '-5s' must be at least 1ms"),
    (
        "CRON_TZ=Mars/Olympus_Mons 0 9 * * *",
        "unknown time zone 'Mars/Olympus_Mons'; use an IANA name such as Europe/Berlin",
    ),
    ("TZ= 0 9 * * *", "unknown time zone ''"),
    ("0 0 30 2 *", "never fires: day-of-month 30 does not occur in month 2"),
    ("0 0 31 4,6,9,11 *", "never fires: day-of-month 31 does not occur in month 4,6,9,11"),
]


@pytest.mark.parametrize(("expression", "message"), ERRORS)
def test_error_names_the_expression_field_and_rule(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(expression)
    assert str(caught.value).startswith(f"cron schedule '{expression}': {message}")
    assert caught.value.expression == expression


def test_error_message_in_full() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse("0 25 * * *")
    assert str(caught.value) == (
        "cron schedule '0 25 * * *': field 'hour' (2nd of 5) value 25 is out of range 0-23"
    )


def test_schedule_error_is_a_value_error_and_ours() -> None:
    with pytest.raises(ValueError) as caught:
        parse("nope")
    assert isinstance(caught.value, FnEventsError)


def test_non_string_schedule_is_rejected() -> None:
    with pytest.raises(ScheduleError, match="must be a string"):
        parse(None)  # type: ignore[arg-type]


def test_naive_datetime_is_rejected() -> None:
    for expression in ("* * * * *", "@every 5s"):
        with pytest.raises(ValueError, match="timezone-aware"):
            parse(expression).next_after(datetime(2024, 1, 1))


def test_zone_defaults_to_utc_and_default_tz_applies_unless_prefixed() -> None:
    after = at("2024-01-01T00:00:00Z")
    assert parse("0 9 * * *").next_after(after) == at("2024-01-01T09:00:00Z")
    assert parse("0 9 * * *", TOKYO).next_after(after) == at("2024-01-02T00:00:00Z")
    prefixed = parse("CRON_TZ=America/New_York 0 9 * * *", TOKYO)
    assert prefixed.next_after(after) == at("2024-01-01T14:00:00Z")


def test_result_is_in_the_zone_of_the_argument() -> None:
    after = at("2024-01-01T00:00:00Z").astimezone(NEW_YORK)
    for expression in ("0 9 * * *", "@every 5s"):
        fire = parse(expression).next_after(after)
        assert fire.tzinfo is NEW_YORK


def test_every_fires_on_multiples_of_the_interval() -> None:
    schedule = parse("@every 1.5s")
    assert isinstance(schedule, EverySchedule)
    fire = schedule.next_after(at("2024-05-06T07:08:09.123Z"))
    for _ in range(5):
        following = schedule.next_after(fire)
        assert following - fire == timedelta(seconds=1.5)
        fire = following


def test_every_with_an_anchor_counts_from_it() -> None:
    start = at("2024-01-01T00:00:00.300Z")
    schedule = EverySchedule("@every 5s", timedelta(seconds=5), anchor=start)
    assert schedule.next_after(start) == at("2024-01-01T00:00:05.300Z")
    assert schedule.next_after(at("2024-01-01T00:00:07Z")) == at("2024-01-01T00:00:10.300Z")


def test_describe() -> None:
    assert parse("@every 1m30s").describe() == "every 90s"
    assert parse("@every 500ms").describe() == "every 0.5s"
    assert parse("0 9 * * MON-FRI", TOKYO).describe() == "cron '0 9 * * MON-FRI' in Asia/Tokyo"


def _brute_force_matches(schedule: CronSchedule, instant: datetime) -> bool:
    """Whether the schedule fires at a whole-second instant: the definition, checked naively."""
    wall = instant.astimezone(schedule.tz)
    dom = wall.day in schedule.days
    dow = wall.isoweekday() % 7 in schedule.weekdays
    day = (dom and dow) if schedule.dom_star or schedule.dow_star else (dom or dow)
    return (
        day
        and wall.month in schedule.months
        and wall.hour in schedule.hours
        and wall.minute in schedule.minutes
        and wall.second in schedule.seconds
    )


@pytest.mark.parametrize(
    "expression", ["*/20 1-3 * * *", "0 * * * *", "30 1 * * *", "0,15 1-3 3,10 * SUN", "@daily"]
)
@pytest.mark.parametrize("start", ["2024-03-09T00:00:00Z", "2024-11-02T00:00:00Z"])
def test_agrees_with_a_minute_by_minute_scan_across_dst(expression: str, start: str) -> None:
    schedule = parse(f"CRON_TZ=America/New_York {expression}")
    assert isinstance(schedule, CronSchedule)
    begin = at(start)
    minutes = [begin + timedelta(minutes=n) for n in range(3 * 24 * 60)]
    expected = [m for m in minutes if _brute_force_matches(schedule, m)]
    fires, fire = [], schedule.next_after(begin - timedelta(seconds=1))
    while fire <= minutes[-1]:
        fires.append(fire)
        fire = schedule.next_after(fire)
    assert fires == expected
    assert fires  # each window holds at least one fire
