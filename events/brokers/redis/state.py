"""Condition state in Redis (a Trigger's ``conditionStore``, a ``state.redis`` Component).

Layout: one hash per trigger, ``fnevents:conditions:{namespace}/{trigger}``, with one
field per input name whose value is the Redis server's time of that input's last
event, in microseconds since the epoch. Every replica of the trigger (and the
trigger after a restart) reads and writes the same hash.

One event is one round trip: :data:`MARK_SCRIPT` reads the server's ``TIME``,
``HSET``s the input, sets the hash to expire a little after the window (so a
trigger that stops hearing events leaves nothing behind), and returns the time
with every field. Freshness is computed from those two server times, so replicas
whose own clocks disagree still agree on it. The script is atomic, so two replicas
marking at once each see the other's mark or not, never half of it.

The client never retries by itself. Any failure is a ``StateStoreError``: the
runner nacks the message (it comes back with backoff) and reports the outage once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from typing import Any, ClassVar

from pydantic import Field, field_validator
from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis.settings import RedisConnection
from events.errors import StateStoreError

KEY_PREFIX = "fnevents:conditions:"
_CLIENT_RETRIES = "accepted for Dapr compatibility; no effect (a failed update is redelivered)"
#: How much longer than the window the hash lives after its last mark: an input exactly
#: one window old still counts, so the hash must outlast the window.
EXPIRY_MARGIN_MS = 1000

# KEYS[1]: the trigger's hash; ARGV[1]: the input name; ARGV[2]: the hash's expiry (ms).
# The time is built as a string: Lua would print a number this large in %.14g, losing digits.
MARK_SCRIPT = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[1], ARGV[1], now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {now, redis.call('HGETALL', KEYS[1])}
"""


async def call(request: Awaitable[Any], settings: RedisConnection, what: str) -> Any:
    """Await a Redis call, turning its failures into StateStoreError (``what`` it did)."""
    try:
        return await request
    except (rx.AuthenticationError, rx.AuthorizationError) as exc:
        raise StateStoreError(
            f"Redis at {settings.address} refused the credentials: {exc}", retriable=False
        ) from exc
    except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        raise StateStoreError(f"cannot reach Redis at {settings.address}: {detail}") from exc
    except rx.RedisError as exc:
        raise StateStoreError(f"Redis refused {what}: {exc}") from exc


class RedisStateSettings(RedisConnection):
    """Metadata of a ``state.redis`` component used as a condition store."""

    component_type: ClassVar[str] = "state.redis"

    maxRetries: int | None = Field(default=None, description=_CLIENT_RETRIES)
    maxRetryBackoff: str | None = Field(default=None, description=_CLIENT_RETRIES)
    keyPrefix: str = Field(
        default="appid",
        description="Function state (context.state) keys, as Dapr: 'appid' ({name}-{namespace}"
        "||key, OpenFunction's app id), 'name' (the Component's name), 'namespace', 'none', or "
        "any other text used as the prefix; a conditionStore's hash ignores it",
    )
    ttlInSeconds: int | None = Field(
        default=None,
        ge=-1,
        description="Function state: expire each saved key after this many "
        "seconds (-1 or unset: never)",
    )
    actorStateStore: bool = Field(
        default=False, description="accepted for Dapr compatibility; fnevents has no actors"
    )
    queryIndexes: str | None = Field(
        default=None, description="accepted for Dapr compatibility; the query API is not offered"
    )

    @field_validator("keyPrefix")
    @classmethod
    def _no_separator(cls, value: str) -> str:
        if "||" in value:
            raise ValueError("a keyPrefix must not contain '||' (Dapr's key separator)")
        return value


def state_key(trigger: str) -> str:
    """The hash of trigger ``namespace/name``."""
    return f"{KEY_PREFIX}{trigger}"


class RedisState:
    """Condition state shared by every replica of one trigger, on the Redis server's clock."""

    def __init__(
        self, settings: RedisStateSettings, trigger: str, window: float, component: str
    ) -> None:
        self.settings = settings
        self.key = state_key(trigger)
        self.component = component
        self._window_us = round(window * 1_000_000)
        self._expiry_ms = math.ceil(window * 1000) + EXPIRY_MARGIN_MS
        options = settings.connection_options(settings.readTimeout)
        self._client = Redis(**options, max_connections=settings.poolSize)
        self._script = self._client.register_script(MARK_SCRIPT)

    async def mark(self, input_name: str, now: float) -> dict[str, bool]:
        return self._freshness(
            await self._call(self._script(keys=[self.key], args=[input_name, self._expiry_ms]))
        )

    async def check(self) -> None:
        """One PING, so a wrong address or password shows at start, not at the first event."""
        await self._call(self._client.ping())

    async def _call(self, request: Awaitable[Any]) -> Any:
        return await call(request, self.settings, "the condition update")

    def _freshness(self, reply: list) -> dict[str, bool]:
        server_now, flat = int(reply[0]), reply[1]
        horizon = server_now - self._window_us
        return {
            name.decode(): int(seen) >= horizon
            for name, seen in zip(flat[::2], flat[1::2], strict=True)
        }

    def describe(self) -> str:
        return self.description(self.settings, self.key.removeprefix(KEY_PREFIX), self.component)

    @staticmethod
    def description(settings: RedisStateSettings, trigger: str, component: str) -> str:
        """Where a trigger's state lives, said without connecting (``fnevents validate``)."""
        return f"state.redis Component {component} at {settings.address}, hash {state_key(trigger)}"

    async def close(self) -> None:
        await self._client.aclose()
