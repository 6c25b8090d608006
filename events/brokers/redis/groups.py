"""Short-lived consumer groups on Redis Streams (``fnevents tail``).

A bus group is created at entry 0 (every event of the stream); a tail's group is
created first at ``$``, the end of the stream, so the bus then joins it as it is,
and it is removed with ``XGROUP DESTROY`` (its pending entries go with it).
"""

from __future__ import annotations

from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis.client import UNREACHABLE
from events.brokers.redis.settings import RedisSettings
from events.errors import BusError


def at_end(settings: RedisSettings) -> RedisSettings:
    """The settings of a bus for a tail (unchanged: :func:`prepare` places the group)."""
    return settings


async def prepare(settings: RedisSettings, topic: str, group: str) -> None:
    """Create ``group`` on ``topic`` at the end of the stream."""
    await _call(settings, lambda c: c.xgroup_create(topic, group, "$", mkstream=True), topic)


async def delete(settings: RedisSettings, topic: str, group: str) -> None:
    """Remove ``group`` from ``topic``."""
    await _call(settings, lambda c: c.xgroup_destroy(topic, group), topic)


async def _call(settings: RedisSettings, command, topic: str) -> None:
    client = Redis(**settings.connection_options(settings.readTimeout))
    try:
        await command(client)
    except UNREACHABLE as exc:
        raise BusError(f"cannot reach Redis at {settings.address}: {exc}", retriable=True) from exc
    except rx.RedisError as exc:
        raise BusError(f"Redis refused a group command on {topic}: {exc}") from exc
    finally:
        await client.aclose()
