"""Condition state: when each of a trigger's inputs last had an event.

Every state answers one question, atomically: "input X has an event now; which
inputs are fresh?" (an input is fresh while its last event is at most one window
old). :class:`ConditionState` is that contract; the runner awaits ``mark``.

- :class:`LocalState` (the default) keeps the times in this process, on its
  monotonic clock: it starts empty after a restart and replicas do not share it,
  as in OpenFunction. Its ``mark_now`` is synchronous, so the runner's hot path
  pays no await for it.
- ``events.brokers.redis.state.RedisState`` (a Trigger's ``conditionStore``) keeps them
  in Redis, timed by the Redis server's clock: they survive restarts and every
  replica of the trigger sees the same state.
"""

from __future__ import annotations

from typing import Protocol

IN_PROCESS = "in-process (lost on restart, not shared by replicas)"


class ConditionState(Protocol):
    """Lifecycle: usable once built (a store connects on first use); ``close`` is
    idempotent. Concurrency: ``mark`` may be called concurrently from one event loop."""

    async def mark(self, input_name: str, now: float) -> dict[str, bool]:
        """Record an event on ``input_name`` and return every known input's freshness,
        including that one (True). ``now`` is this process's monotonic clock; a shared
        store uses its own clock instead. Raises ``StateStoreError`` when the store
        cannot answer; then nothing can be assumed about whether the mark was kept."""
        ...

    async def check(self) -> None:
        """Raise ``StateStoreError`` if the store cannot be used (called once at start)."""
        ...

    def describe(self) -> str: ...

    async def close(self) -> None: ...


class LocalState:
    """In-process state on the monotonic clock (the default)."""

    __slots__ = ("last_seen", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        #: input name -> this process's monotonic time of its last event
        self.last_seen: dict[str, float] = {}

    def mark_now(self, input_name: str, now: float) -> dict[str, bool]:
        """``mark`` without the await, for the runner's hot path."""
        self.last_seen[input_name] = now
        horizon = now - self.window
        return {name: seen >= horizon for name, seen in self.last_seen.items()}

    async def mark(self, input_name: str, now: float) -> dict[str, bool]:
        return self.mark_now(input_name, now)

    async def check(self) -> None:
        return None

    def describe(self) -> str:
        return IN_PROCESS

    async def close(self) -> None:
        return None
