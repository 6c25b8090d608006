"""Key/value state in Redis, in the layout of Dapr's ``state.redis`` component.

Each key is one hash with two fields, as Dapr writes it:

- ``data``: the value's bytes, unchanged;
- ``version``: an integer incremented by every save, which is the key's ETag.

A Dapr app with the same Component (and the same ``keyPrefix``; the caller passes
the full Redis key) reads and writes the same values.

Concurrency: every operation is one Lua script, so it is atomic on the server.
Saves from any number of processes never interleave inside a key, and each one
bumps ``version`` exactly once. Without an ETag a save is last-write-wins, as in
Dapr's default; with one it applies only if the key's version still equals it
(Dapr's optimistic concurrency), else it changes nothing and reports a conflict.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from events.brokers.redis.state import RedisStateSettings, call

# KEYS[1]: the key; ARGV[1]: the expected version ('' for any); ARGV[2]: the data;
# ARGV[3]: seconds to live (<= 0: no expiry). Returns the new version, or false on a conflict.
SAVE_SCRIPT = """
local expected = ARGV[1]
if expected ~= '' and redis.call('HGET', KEYS[1], 'version') ~= expected then
  return false
end
redis.call('HSET', KEYS[1], 'data', ARGV[2])
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return version
"""

# KEYS[1]: the key; ARGV[1]: the expected version ('' for any). Returns 1 if it was deleted,
# 0 if it did not exist, false on a conflict.
DELETE_SCRIPT = """
local expected = ARGV[1]
if expected ~= '' and redis.call('HGET', KEYS[1], 'version') ~= expected then
  return false
end
return redis.call('DEL', KEYS[1])
"""


class RedisKeyValue:
    """One ``state.redis`` Component's keys. Safe to share between tasks; ``close`` once."""

    def __init__(self, settings: RedisStateSettings, component: str) -> None:
        self.settings = settings
        self.component = component
        options = settings.connection_options(settings.readTimeout)
        self._client = Redis(**options, max_connections=settings.poolSize)
        self._save = self._client.register_script(SAVE_SCRIPT)
        self._delete = self._client.register_script(DELETE_SCRIPT)
        self._ttl = settings.ttlInSeconds or 0

    async def get(self, key: str) -> tuple[bytes | None, str | None]:
        """The value and its ETag; ``(None, None)`` for a missing key."""
        data, version = await self._call(self._client.hmget(key, "data", "version"), key)
        if data is None:
            return None, None
        return bytes(data), version.decode() if version is not None else None

    async def save(self, key: str, data: bytes, etag: str | None = None) -> str | None:
        """Store ``data``; the new ETag, or None when ``etag`` no longer matches."""
        version = await self._call(self._save(keys=[key], args=[etag or "", data, self._ttl]), key)
        return None if version is None else str(version)

    async def delete(self, key: str, etag: str | None = None) -> bool | None:
        """Remove ``key``: True if it existed, False if not, None when ``etag`` no longer
        matches."""
        removed = await self._call(self._delete(keys=[key], args=[etag or ""]), key)
        return None if removed is None else bool(removed)

    async def check(self) -> None:
        """One PING, so a wrong address or password shows at start."""
        await self._call(self._client.ping(), "")

    async def _call(self, request: Any, key: str) -> Any:
        return await call(request, self.settings, f"the state operation on key {key!r}")

    def describe(self) -> str:
        return f"state.redis Component {self.component} at {self.settings.address}"

    async def close(self) -> None:
        await self._client.aclose()
