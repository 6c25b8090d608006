"""The errors ``fnevents deadletters`` raises; each message says what to do instead."""

from __future__ import annotations

from events.errors import FnEventsError


class DeadLettersUnavailable(FnEventsError, NotImplementedError):
    """The bus cannot hold dead letters for another process to read."""


class UnknownDeadLetters(FnEventsError, LookupError):
    """The trigger, EventBus or topic asked for does not exist in the manifests."""
