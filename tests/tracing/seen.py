"""What the test functions saw; they run in the test's process and append here."""

from __future__ import annotations

SEEN: list[tuple[str, str, str | None, str]] = []
