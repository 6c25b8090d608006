"""The ``redis`` source: a Redis Stream (at least once) or Pub/Sub channels (AT MOST ONCE).

OpenFunction wires its ``redis`` EventSource to Dapr's ``bindings.redis``, which is
output-only, so it never receives anything. fnevents reads what the event names
with one of two extensions (exactly one per event):

``stream: orders`` -- a Redis Stream read by a consumer group, **at least once**:

- the group is ``consumerGroup``, else ``{namespace}-esc-redis-{event}``, created at
  the start of the stream (``XGROUP CREATE orders <group> 0 MKSTREAM``), so entries
  added before the first start are read too; replicas running the same manifest
  share the group and split the entries;
- each entry is XACKed only after ``outlet.emit`` (or ``outlet.reject``) returned,
  i.e. once the bus holds the event;
- entries a crashed or stuck replica left pending are claimed (XPENDING + XCLAIM)
  once idle for ``processingTimeout`` (default 60s), looked for every
  ``redeliverInterval`` (default 15s); a replica that stops cleanly hands its
  entries back at once;
- the entries of one read (up to 100) are emitted concurrently, which saves a bus
  round trip per entry. A healthy bus gets them in stream order (a claimed-back
  entry comes after later ones); a sink, or a bus that is retrying through an
  outage, may see them out of order.

The consumer-group member, its reads, claims and batched acks are the ``pubsub.redis``
bus's own (``events.brokers.redis.member``), used here on raw entries through
``events.brokers.redis.source``, which reads Pub/Sub channels too.

``channel: news`` -- Redis Pub/Sub, ``SUBSCRIBE``, or ``PSUBSCRIBE`` when the name has
glob characters (``*``, ``?``, ``[``). **At most once**, because Redis Pub/Sub is:
Redis keeps nothing, so messages published while the source is not connected
(starting, reconnecting, restarting) are lost, and so are messages Redis drops when
the source falls behind (``client-output-buffer-limit pubsub``). Use a stream when
every event matters. The startup line says "(Pub/Sub: at most once)" and a warning
explains it.

What an entry or message becomes: see :mod:`sources.redis_entries`.

Settings are OpenFunction's ``redis`` fields where they apply: ``redisHost``,
``redisPassword`` (empty means none), ``enableTLS``, ``redisDB``,
``processingTimeout``, ``redeliverInterval``, ``dialTimeout``, ``readTimeout``,
``writeTimeout``, ``poolSize``; the client tuning fields (``redisMaxRetries``,
``poolTimeout``, ``idleTimeout``, ...) are accepted with no effect (reconnect
lives in the runtime). Redis Sentinel (``failover``, ``sentinelMasterName``) and
Cluster (``redisType: cluster``) are not supported: a load error says so.

An unreachable or lost Redis raises ``FnEventsError(retriable=True)`` naming the
address; the runtime restarts the source with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import ValidationError

from events.brokers.redis.settings import RedisSettings
from events.brokers.redis.source import Entry, RedisChannelReader, RedisStreamReader
from events.errors import BusError, FnEventsError
from sources.contract import Outlet, Source, SourceIdentity
from sources.normalize import Rejected, content_id
from sources.redis_entries import channel_event, entry_bytes, stream_event

#: OpenFunction ``redis`` fields passed on to the connection and the group member.
_USED = (
    "redisHost",
    "redisDB",
    "enableTLS",
    "processingTimeout",
    "redeliverInterval",
    "dialTimeout",
    "readTimeout",
    "writeTimeout",
    "poolSize",
    "redisMaxRetries",
    "redisMinRetryInterval",
    "redisMaxRetryInterval",
    "poolTimeout",
    "maxConnAge",
    "minIdleConns",
    "idleCheckFrequency",
    "idleTimeout",
)


class RedisSourceError(FnEventsError, ConnectionError):
    """Redis could not be read; ``retriable`` when it is unreachable for now."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        self.retriable = retriable
        super().__init__(message)


class RedisSource(Source):
    kind: ClassVar[str] = "redis"

    def __init__(self, identity: SourceIdentity, settings: Any) -> None:
        super().__init__(identity, settings)
        self.redis = connection_settings(settings)
        self.address = self.redis.address
        self.stream: str | None = settings.stream
        self.channel: str | None = settings.channel
        self.group = settings.consumerGroup or f"{identity.namespace}-esc-redis-{identity.event}"

    def describe(self) -> str:
        where = f"redis {self.identity.label} from redis://{self.address}"
        if self.stream is not None:
            return f"{where} stream {self.stream}"
        return f"{where} channel {self.channel} (Pub/Sub: at most once)"

    def notices(self) -> list[str]:
        if self.channel is None:
            return []
        return [
            "Redis Pub/Sub is at most once: messages published while fnevents is not "
            "connected are lost; use 'stream' when every event matters"
        ]

    async def run(self, outlet: Outlet) -> None:
        if self.stream is not None:
            await self._read_stream(self.stream, outlet)
        else:
            assert self.channel is not None
            await self._read_channel(self.channel, outlet)

    # -- streams ----------------------------------------------------------------------

    async def _read_stream(self, stream: str, outlet: Outlet) -> None:
        reader = RedisStreamReader(
            self.redis, stream, self.group, pubsub_name=f"source-{self.identity.event}"
        )
        try:
            with _source_errors():
                await reader.open()
            while True:
                with _source_errors():
                    entries = await reader.take()
                await self._forward(stream, entries, reader, outlet)
        finally:
            await reader.close()  # hands held entries back now, not a processingTimeout later

    async def _forward(
        self, stream: str, entries: list[Entry], reader: RedisStreamReader, outlet: Outlet
    ) -> None:
        """Emit every entry, then XACK each one that is safe; raise the first failure."""
        if len(entries) == 1:  # the common case when keeping up: no tasks needed
            await self._emit_entry(stream, entries[0], outlet)
            await reader.ack(entries[0][0])
            return
        results = await asyncio.gather(
            *(self._emit_entry(stream, entry, outlet) for entry in entries),
            return_exceptions=True,
        )
        failure: BaseException | None = None
        for (entry_id, _, _), result in zip(entries, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                await reader.ack(entry_id)
        if failure is not None:  # unacked entries stay pending and come back
            raise failure

    async def _emit_entry(self, stream: str, entry: Entry, outlet: Outlet) -> None:
        entry_id, fields, _ = entry
        position = entry_id.decode()
        try:
            event = stream_event(fields, self.address, stream, position)
        except Exception as exc:  # noqa: BLE001 - one entry must never stop the stream
            await outlet.reject(entry_bytes(fields), _reason(exc), f"{stream}/{position}")
            return
        await outlet.emit(event)

    # -- Pub/Sub ----------------------------------------------------------------------

    async def _read_channel(self, channel: str, outlet: Outlet) -> None:
        reader = RedisChannelReader(self.redis, channel)
        try:
            with _source_errors():
                await reader.open()
            while True:
                with _source_errors():
                    name, payload = await reader.receive()
                await self._emit_message(name, payload, outlet)
        finally:
            await reader.close()

    async def _emit_message(self, channel: str, payload: bytes, outlet: Outlet) -> None:
        try:
            event = channel_event(payload, self.address, channel)
        except Exception as exc:  # noqa: BLE001 - one message must never stop the channel
            await outlet.reject(payload, _reason(exc), f"redis:{content_id(channel, payload)}")
            return
        await outlet.emit(event)


def _reason(exc: Exception) -> str:
    """Why input was rejected; an unexpected error (a bug) is named, not hidden."""
    if isinstance(exc, Rejected):
        return exc.reason
    return f"could not be normalized ({type(exc).__name__}: {exc})"


@contextlib.contextmanager
def _source_errors() -> Iterator[None]:
    """A lost or refusing Redis, as this source's error (same message and retriability)."""
    try:
        yield
    except BusError as exc:
        raise RedisSourceError(str(exc), retriable=exc.retriable) from exc


def connection_settings(spec: Any) -> RedisSettings:
    """The bus's Redis settings model from an EventSource's ``redis`` fields; a clear
    ValueError (naming the field) for what the source does not support."""
    if spec.failover:
        raise ValueError(_unsupported("failover: true", "Redis Sentinel"))
    if spec.sentinelMasterName:
        raise ValueError(_unsupported("sentinelMasterName", "Redis Sentinel"))
    if spec.redisType not in (None, "node"):
        raise ValueError(_unsupported(f"redisType: {spec.redisType}", "Redis Cluster"))
    values = {name: getattr(spec, name) for name in _USED if getattr(spec, name) is not None}
    values["redisPassword"] = spec.redisPassword or None
    values["consumerID"] = socket.gethostname()  # names this replica's group members
    try:
        return RedisSettings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{field}: {error['msg'].removeprefix('Value error, ')}") from None


def _unsupported(setting: str, feature: str) -> str:
    return (
        f"'{setting}': {feature} is not supported by the redis source; "
        "set redisHost to one Redis node (host:port)"
    )
