"""Dead letters on Redis Streams: read with XINFO, XPENDING and XRANGE (nothing is taken).

What :data:`REPLAY_GROUP` has not acked is what it holds pending (handed to a replay,
not settled) plus every entry after its last-delivered id; with no group yet, the
whole stream.
"""

from __future__ import annotations

from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis

from events.brokers.redis.bus import RedisBus
from events.brokers.redis.client import UNREACHABLE
from events.brokers.redis.message import decode
from events.brokers.redis.settings import RedisSettings
from events.bus.contract import EventBus
from events.bus.letters import REPLAY_GROUP, Letter, LetterStore
from events.errors import BusError

#: The most entries one XRANGE or XPENDING returns; larger listings page.
PAGE = 1000


class RedisLetters(LetterStore):
    settings: RedisSettings

    def __init__(self, settings: RedisSettings, pubsub_name: str) -> None:
        super().__init__(settings, pubsub_name)
        self._client = Redis(**settings.connection_options(settings.readTimeout))

    def replay_bus(self) -> EventBus:
        # Letters a replay did not ack come back by claiming, which '0' would switch off.
        settings, fields = self.settings, RedisSettings.model_fields
        claiming = {
            name: fields[name].default
            for name in ("processingTimeout", "redeliverInterval")
            if getattr(settings, name) <= 0
        }
        return RedisBus(settings.model_copy(update=claiming), pubsub_name=self.pubsub_name)

    async def browse(self, topic: str, limit: int | None = None) -> list[Letter]:
        try:
            return await self._browse(topic, limit)
        except UNREACHABLE as exc:
            detail = str(exc) or type(exc).__name__
            raise BusError(f"cannot reach Redis at {self.settings.address}: {detail}") from exc
        except rx.RedisError as exc:
            raise BusError(f"cannot read {topic} on Redis: {exc}") from exc

    async def _browse(self, topic: str, limit: int | None) -> list[Letter]:
        group = await self._group(topic)
        if group is None:
            return await self._range(topic, "-", limit)
        pending = await self._pending(topic, limit)
        letters = pending
        room = None if limit is None else limit - len(pending)
        if room is None or room > 0:
            letters += await self._range(topic, f"({_text(group['last-delivered-id'])}", room)
        return letters

    async def _group(self, topic: str) -> dict[str, Any] | None:
        try:
            groups = await self._client.xinfo_groups(topic)
        except rx.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        return next((g for g in groups if _text(g["name"]) == REPLAY_GROUP), None)

    async def _pending(self, topic: str, limit: int | None) -> list[Letter]:
        letters: list[Letter] = []
        start = "-"
        while limit is None or len(letters) < limit:
            page = await self._client.xpending_range(topic, REPLAY_GROUP, start, "+", PAGE)
            pipe = self._client.pipeline(transaction=False)
            for item in page:
                pipe.xrange(topic, item["message_id"], item["message_id"])
            for found in await pipe.execute() if page else []:
                if found:  # an entry trimmed away has nothing left to replay
                    letters.append(self._letter(topic, found[0], pending=True))
            if len(page) < PAGE:
                break
            start = f"({_text(page[-1]['message_id'])}"
        return letters[:limit]

    async def _range(self, topic: str, start: str, limit: int | None) -> list[Letter]:
        letters: list[Letter] = []
        while limit is None or len(letters) < limit:
            count = PAGE if limit is None else min(PAGE, limit - len(letters))
            page = await self._client.xrange(topic, start, "+", count)
            letters += [self._letter(topic, entry) for entry in page]
            if len(page) < count:
                break
            start = f"({_text(page[-1][0])}"
        return letters

    def _letter(self, topic: str, entry: Any, pending: bool = False) -> Letter:
        entry_id, fields = _text(entry[0]), entry[1]
        event, _ = decode(fields, topic, self.pubsub_name, f"{topic}/{entry_id}")
        return Letter(topic, entry_id, event, pending)

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
