"""Durations as users write them in manifests.

Two notations are accepted wherever fnevents reads a duration, so users can keep
the one their neighbours use: Go durations as Dapr and OpenFunction write them
(``500ms``, ``5s``, ``1m30s``) and ISO-8601 durations as Knative writes them
(``PT0.5S``, ``PT1M30S``). A bare number means seconds.
"""

from __future__ import annotations

import re

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
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_ISO = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)

GO_FORMAT_HINT = "a Go duration such as '500ms', '5s' or '1m30s'"
FORMAT_HINT = f"{GO_FORMAT_HINT}, or an ISO-8601 duration such as 'PT5S'"


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string. Raises ValueError with the expected format."""
    value = text.strip()
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if not match:
            raise ValueError(f"{text!r} is not {GO_FORMAT_HINT}")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise ValueError(f"{text!r} is not {GO_FORMAT_HINT}")
    return sign * total


def parse_iso_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration (days, hours, minutes, seconds)."""
    match = _ISO.fullmatch(text.strip().upper())
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as 'PT5S'")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )


def parse_duration(value: str | int | float) -> float:
    """Seconds in any accepted notation; raises ValueError naming the accepted formats."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use {FORMAT_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif value.strip().upper().startswith("P"):
        seconds = parse_iso_duration(value)
    else:
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parse_go_duration(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a duration; use {FORMAT_HINT}") from None
    if seconds < 0:
        raise ValueError(f"{value!r} is negative; durations must be zero or more")
    return seconds
