"""Filters on a Trigger's inputs and subscribers (the ``filter`` extension).

A filter has up to four clauses, and an event passes only if every clause given holds:

- ``exact``, ``prefix``, ``suffix``: attribute name -> string. The attribute's value must
  equal / start with / end with the string. Any attribute can be named: the context
  attributes (``type``, ``source``, ``subject``, ``id``, ``time``, ...) and extensions. An
  attribute the event does not have never matches. A value that is not a string is compared
  in its CloudEvents canonical string form, as it travels in an HTTP header: an integer as
  its decimal digits (``"7"``), a boolean as ``"true"``/``"false"``, binary as base64.
  These are plain string tests with no expression engine: the fast path.
- ``cel``: a CEL expression that must give ``true``. Its variables are:

  - ``event``: a map with every attribute the event has, extensions included, under their
    CloudEvents names (``event.type``, ``event.partitionkey``), with their own types
    (extensions may be int, bool or bytes; ``event.time`` is a string: compare it with
    ``timestamp(event.time)``). It holds ``data`` too when the event has data.
  - ``data``: shorthand for ``event.data``; ``null`` when the event has no data, and
    ``has(event.data)`` is false then.

  Data looks as the CloudEvent holds it: JSON data (a JSON content type, or none) as maps,
  lists, numbers, strings, booleans and null, so ``data.reading.speed`` reaches into nested
  objects; text data (``text/*`` and the like) as a string; binary data as CEL ``bytes``
  (``size(data)``, ``data == b"\\x01"``, or ``string(data)`` to read UTF-8 text).
  Any other name is a load error listing these two.

  Numbers compare by value across int and double: ``data.speed > 80`` holds for 90 and for
  90.5, and ``data.speed > 80.0`` holds for 90 (JSON does not say which one a number is).
  Arithmetic still keeps CEL's types: ``data.speed + 1.5`` needs ``double(data.speed)``.

- An expression that cannot be evaluated on an event -- a missing field (``data.speed`` on
  data without ``speed``), a wrong type (``data.speed > 80`` where speed is a string), a
  result that is not a boolean -- makes that event **not match**; it never stops the
  trigger. Each such event counts in ``fnevents_filter_errors_total{trigger, where}`` and is
  logged as a warning naming the trigger, the filter and the event; per filter at most one
  line every 10 seconds, which says how many more were left out. Use ``has(data.speed)``
  in the expression to make a missing field a plain ``false`` instead.
- Filters are compiled when the manifests load; a syntax error (shown with its column and
  a caret) or an unknown variable is a load error naming the field.

Where a filter sits decides what it does (see :mod:`triggers.runner`): an input's filter
drops events before they count for conditions; a subscriber's filter is checked after its
condition holds, and the subscriber receives the event unchanged (a filter never edits it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from events.bindings.data import canonical_string
from events.cloudevent import CloudEvent
from events.manifests.extensions import FilterSpec
from events.observability.metrics import Metrics
from events.types import Report
from triggers.celfilter import CelClause

#: Seconds between two log lines about one filter's evaluation errors.
ERROR_LOG_INTERVAL = 10.0


class EventFilter(Protocol):
    """A compiled filter: whether one event passes. ``matches`` never raises.

    ``bind`` is called once by the trigger that uses the filter, before any event, to say
    where evaluation errors are counted and logged; binding again replaces that.
    """

    description: str

    def matches(self, event: CloudEvent) -> bool: ...

    def bind(self, trigger: str, where: str, metrics: Metrics, warn: Report) -> None: ...


def compile_filter(spec: FilterSpec) -> CompiledFilter:
    """Compile a manifest's ``filter``; raises ExpressionError for a bad ``cel``."""
    return CompiledFilter(spec)


_TESTS: dict[str, Callable[[str, str], bool]] = {
    "exact": str.__eq__,
    "prefix": str.startswith,
    "suffix": str.endswith,
}


class CompiledFilter:
    """Attribute clauses first (cheap string tests), then the CEL clause if any."""

    __slots__ = ("_cel", "_clauses", "_report", "description")

    def __init__(self, spec: FilterSpec) -> None:
        self._clauses = tuple(
            (name, _TESTS[kind], expected)
            for kind in ("exact", "prefix", "suffix")
            for name, expected in getattr(spec, kind).items()
        )
        self._cel = CelClause(spec.cel) if spec.cel is not None else None
        self._report: Callable[[str, CloudEvent], None] = _unbound
        self.description = _describe(spec)

    def matches(self, event: CloudEvent) -> bool:
        for name, test, expected in self._clauses:
            value = event.get(name)
            if value is None:
                return False
            if type(value) is not str:
                value = canonical_string(value)
            if not test(value, expected):
                return False
        return self._cel is None or self._cel.matches(event, self._report)

    def bind(self, trigger: str, where: str, metrics: Metrics, warn: Report) -> None:
        self._report = ErrorLog(
            metrics.filter_errors.labels(trigger, where).inc,
            warn,
            f"filter {where} ({self.description})",
        )


class ErrorLog:
    """Counts every evaluation error and logs at most one line per ``interval`` seconds.

    The line after a quiet spell says how many errors were left out since the last one,
    so the log shows that errors go on without printing each; the metric has them all.
    """

    __slots__ = ("_count", "_interval", "_label", "_next", "_suppressed", "_warn")

    def __init__(
        self,
        count: Callable[[], Any],
        warn: Report,
        label: str,
        interval: float = ERROR_LOG_INTERVAL,
    ) -> None:
        self._count = count
        self._warn = warn
        self._label = label
        self._interval = interval
        self._next = float("-inf")
        self._suppressed = 0

    def __call__(self, problem: str, event: CloudEvent) -> None:
        self._count()
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        left_out = ""
        if self._suppressed:
            left_out = f" ({self._suppressed} more such error(s) since the last line not shown)"
        self._warn(
            f"{self._label} could not be evaluated on event id={event.id} type={event.type}, "
            f"so it does not match: {problem}{left_out}"
        )
        self._suppressed = 0
        self._next = now + self._interval


def _unbound(problem: str, event: CloudEvent) -> None:
    """Before ``bind`` there is nowhere to report to; the event still does not match."""


def _describe(spec: FilterSpec) -> str:
    parts = [
        f"{kind} {name}={expected!r}"
        for kind in ("exact", "prefix", "suffix")
        for name, expected in getattr(spec, kind).items()
    ]
    if spec.cel is not None:
        parts.append(f"cel {spec.cel!r}")
    return ", ".join(parts)
