"""Durations as users write them in manifests.

Two notations are accepted wherever fnevents reads a duration, so users can keep
the one their neighbours use: Go durations as Dapr and OpenFunction write them
(``500ms``, ``5s``, ``1m30s``) and ISO-8601 durations as Knative writes them
(``PT0.5S``, ``PT1M30S``). A bare number means seconds.

Every duration is finite and at most ``MAX_SECONDS``, the longest Go duration (about
292 years): what Dapr and OpenFunction can represent, and far more than any timeout
or window needs, so the result is always a float every clock and timer accepts.
"""

from __future__ import annotations

import math
import re

from events.errors import quote

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
_ISO = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.ASCII,
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

#: The longest duration: Go's ``time.Duration`` maximum, 2^63-1 ns (2562047h47m16.85s).
MAX_SECONDS = (2**63 - 1) / 1e9
GO_FORMAT_HINT = "a Go duration such as '500ms', '5s' or '1m30s'"
FORMAT_HINT = f"{GO_FORMAT_HINT}, or an ISO-8601 duration such as 'PT5S'"
TOO_LONG = f"durations must be at most {MAX_SECONDS:.0f} seconds (2562047h, about 292 years)"


class OutOfRange(ValueError):
    """A duration written correctly, but too long (or not a number: NaN)."""


def check_range(seconds: float, written: object) -> float:
    """``seconds`` if finite and at most MAX_SECONDS long (either sign), else OutOfRange."""
    if math.isnan(seconds):
        raise OutOfRange(f"{quote(written)} is not a number of seconds")
    if abs(seconds) > MAX_SECONDS:
        raise OutOfRange(f"{quote(written)} is too long; {TOO_LONG}")
    return seconds


def number_of_seconds(value: int | float, written: object = None, unit: float = 1.0) -> float:
    """``value`` units (1.0: seconds, 0.001: milliseconds) as a float of seconds;
    ValueError, never OverflowError, when it is too long (``float(10**400)`` overflows)."""
    written = value if written is None else written
    if isinstance(value, int) and abs(value) > MAX_SECONDS / unit:  # exact, no float(value)
        raise OutOfRange(f"{quote(written)} is too long; {TOO_LONG}")
    return check_range(value * unit, written)


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string. Raises ValueError with the expected format."""
    value = text.strip()
    sign = -1.0 if value.startswith("-") else 1.0
    body = value[1:] if value[:1] in ("+", "-") else value
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if not match:
            raise ValueError(f"{quote(text)} is not {GO_FORMAT_HINT}")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise ValueError(f"{quote(text)} is not {GO_FORMAT_HINT}")
    return check_range(sign * total, text)


def parse_iso_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration (days, hours, minutes, seconds)."""
    match = _ISO.fullmatch(text.strip().upper())
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"{quote(text)} is not an ISO-8601 duration such as 'PT5S'")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    seconds = (
        parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )
    return check_range(seconds, text)


def parse_duration(value: str | int | float) -> float:
    """Seconds in any accepted notation; raises ValueError naming the accepted formats
    (OutOfRange, a ValueError, for one that reads as a duration but is too long)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{quote(value)} is not a duration; use {FORMAT_HINT}")
    if isinstance(value, int | float):
        seconds = number_of_seconds(value)
    elif value.strip().upper().startswith("P"):
        seconds = parse_iso_duration(value)
    elif _NUMBER.fullmatch(value.strip()):
        seconds = check_range(float(value), value)  # '1e999' is inf: too long
    else:
        try:
            seconds = parse_go_duration(value)
        except OutOfRange:
            raise
        except ValueError:
            raise ValueError(f"{quote(value)} is not a duration; use {FORMAT_HINT}") from None
    if seconds < 0:
        raise ValueError(f"{quote(value)} is negative; durations must be zero or more")
    return seconds
