"""Type aliases shared across the packages, each defined once."""

from __future__ import annotations

from collections.abc import Callable

#: Say one line to the user (a warning or a note), e.g. ``Console.warn``.
Report = Callable[[str], None]
