"""The in-memory bus's settings."""

from __future__ import annotations

from pydantic import Field

from events.bus.settings import BackendSettings

DEFAULT_MAX_PENDING = 10_000


class MemorySettings(BackendSettings):
    maxPending: int = Field(
        default=DEFAULT_MAX_PENDING,
        ge=1,
        description="extension: unacked events per group before publishing waits",
    )
