"""One error root for fnevents, with specific subclasses written for users.

Each subclass also inherits the stdlib type it resembles, so callers that do not
know fnevents can still catch ``ValueError`` or ``ConnectionError``.
"""

from __future__ import annotations

import reprlib

#: Characters of a user's value that an error message quotes; the rest is counted, not shown.
QUOTE_LIMIT = 100
#: Characters of one part of a ManifestError's location (resource, field) that are shown.
PART_LIMIT = 200
#: Characters of a ManifestError's problem text that are shown.
PROBLEM_LIMIT = 1500

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = QUOTE_LIMIT
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 8


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def shown(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A name from a manifest as a message shows it: as written if it is printable, else
    quoted with escapes (a newline or a terminal control sequence never reaches the
    terminal raw); cut to ``limit`` characters either way."""
    return shorten(text, limit) if text.isprintable() else quote(text, limit)


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A user's value as an error message shows it: its repr, at most ``limit`` characters
    of the value, whatever its size (a huge or deeply nested value is never stringified
    whole, so quoting it costs no more than quoting a short one)."""
    if isinstance(value, str | bytes):
        shown = value[:limit]
        text = repr(shown)
        while len(text) > limit + 3 and len(shown) > 1:  # escapes: '\\x00' is 4 characters
            shown = shown[: len(shown) // 2]
            text = repr(shown)
        if len(shown) == len(value):
            return text
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{text}... ({len(value) - len(shown)} more {unit})"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return shorten(_REPR.repr(value), limit)


class FnEventsError(Exception):
    """The root of every error fnevents raises on purpose."""

    #: Whether trying the same operation again may succeed.
    retriable: bool = False
    #: Whether the part that raised has already told the user (an outage is reported once,
    #: by the part that sees it); the delivery loop then does not repeat it per event.
    reported: bool = False


class InvalidCloudEvent(FnEventsError, ValueError):
    """A CloudEvent (or its wire form) breaks the CloudEvents 1.0 spec."""

    def __init__(self, attribute: str, problem: str) -> None:
        self.attribute = attribute
        self.problem = problem
        super().__init__(f"invalid CloudEvent attribute '{attribute}': {problem}")


class ManifestError(FnEventsError, ValueError):
    """A manifest is malformed or refers to something that does not exist.

    The message always names where the problem is (file, document, kind/name,
    field path) and what was expected, so a user can fix it without a traceback.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        document: int | None = None,
        resource: str | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.document = document
        self.resource = resource
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        # Every part is bounded, whatever a manifest put in it: the message stays short.
        where = []
        if self.file:
            where.append(str(self.file))
        if self.document is not None:
            where.append(f"document {self.document}")
        if self.resource:
            where.append(shorten(str(self.resource), PART_LIMIT))
        if self.field:
            where.append(f"field '{shorten(str(self.field), PART_LIMIT)}'")
        prefix = ", ".join(where)
        problem = shorten(str(self.problem), PROBLEM_LIMIT)
        return f"{prefix}: {problem}" if prefix else problem


class ManifestErrors(FnEventsError, ValueError):
    """Several manifest errors found in one pass, reported together."""

    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ExpressionError(FnEventsError, ValueError):
    """A CEL expression does not compile; the message shows the position."""


class ScheduleError(FnEventsError, ValueError):
    """A cron schedule does not parse, or can never fire.

    The message names the expression, the field and the offending value, and
    says what is allowed, e.g. ``cron schedule '0 25 * * *': field 'hour' (2nd
    of 5) value 25 is out of range 0-23``.
    """

    def __init__(self, expression: str, problem: str) -> None:
        self.expression = expression
        self.problem = problem
        super().__init__(
            f"cron schedule '{shorten(expression)}': {shorten(problem, PROBLEM_LIMIT)}"
        )


class BusError(FnEventsError):
    """The event bus could not do what was asked.

    ``retriable=True`` means the broker is unreachable for now (the core retries
    with backoff); False means retrying cannot help (bad settings, closed bus).
    """

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


class BusClosed(BusError, RuntimeError):
    """The bus (or subscription) was closed; no further operations are possible."""


class BackendNotAvailable(BusError, NotImplementedError):
    """The manifests ask for a bus backend this build of fnevents does not have."""


class DeliveryError(FnEventsError):
    """Delivering an event to a sink failed.

    ``retriable`` says whether the delivery loop should try again;
    ``retry_after`` carries a server's Retry-After hint in seconds.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        body_excerpt: str = "",
        retriable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        self.reason = reason
        self.status = status
        self.body_excerpt = body_excerpt
        self.retriable = retriable
        self.retry_after = retry_after
        super().__init__(reason)


class StateStoreError(FnEventsError, ConnectionError):
    """A trigger's condition store could not be read or written.

    The event is not evaluated: the handler raises, the bus message is nacked and
    redelivered with backoff. The trigger reports the outage once and then sets
    ``reported``, so the delivery loop does not repeat it per event.
    """

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        self.retriable = retriable
        super().__init__(message)
