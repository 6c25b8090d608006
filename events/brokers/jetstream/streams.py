"""Streams and consumers for :class:`~events.brokers.jetstream.bus.JetStreamBus`: which stream
holds a topic, what a group's consumer is called, and creating both on demand.

Naming: JetStream stream and consumer names cannot hold ``.``, ``*``, ``>``,
whitespace or path separators, and a topic usually has dots; :func:`safe_name`
maps any text to a valid name that stays unique. A topic itself must be a valid
NATS subject (:func:`check_topic`): it is the subject events are published on,
the same one a Dapr app on this component uses.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError
from nats.js.manager import JetStreamManager

from events.brokers.jetstream.settings import JetStreamSettings
from events.errors import BusError

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NAME_LIMIT = 64


def safe_name(text: str) -> str:
    """A valid JetStream stream or consumer name for ``text``: ``text`` itself when it is
    one, else ``text`` with unsafe characters (``.``, ``*``, ``>``, spaces, ...) made
    ``_`` plus a short hash of ``text``, so ``a.b`` and ``a_b`` stay apart."""
    safe = _UNSAFE_NAME.sub("_", text)
    if safe == text and len(safe) <= _NAME_LIMIT:
        return safe
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{safe[: _NAME_LIMIT - 9]}_{digest}"


def check_topic(topic: str) -> None:
    """A topic is a NATS subject: dot-separated tokens, no wildcards or spaces."""
    tokens = topic.split(".")
    if not topic or any(not t or t in ("*", ">") or any(c.isspace() for c in t) for t in tokens):
        raise BusError(
            f"topic {topic!r} cannot be a NATS subject: use dot-separated tokens without "
            f"spaces and without the wildcards '*' and '>'"
        )


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a stream's subject ``pattern`` (with ``*`` and ``>``) covers ``subject``."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


@dataclass(frozen=True)
class Stream:
    name: str
    #: Whether other topics share it, so that a group's consumer name needs the topic.
    shared: bool

    def consumer_name(self, group: str, topic: str, prefix: str | None) -> str:
        """The durable consumer of ``group`` on ``topic``: named after the group in the
        topic's own stream, after group and topic in a shared one (consumer names are
        per stream, and each topic needs its own position)."""
        name = f"{prefix}-{group}" if prefix else group
        return safe_name(f"{name}-{topic}" if self.shared else name)


class Streams:
    """The streams and consumers seen through one connection (cached per topic)."""

    def __init__(self, jsm: JetStreamManager, settings: JetStreamSettings, url: str) -> None:
        self._jsm = jsm
        self._settings = settings
        self._url = url
        self._streams: dict[str, Stream] = {}
        self._lock = asyncio.Lock()

    def has(self, topic: str) -> bool:
        return topic in self._streams

    def forget(self, topic: str) -> None:
        self._streams.pop(topic, None)

    async def stream_for(self, topic: str) -> Stream:
        """The stream that holds ``topic``, created on first use (cached per link).

        With ``streamName`` set, every topic goes into that stream (its subject is
        added if missing). Otherwise the stream that already holds the subject is
        used as it is (so an operator's stream, or one a Dapr app uses, is shared);
        failing that, a stream per topic is created: file storage, limits retention
        with no limits (events stay until an operator sets limits, as with
        ``nats stream add``), the server's 2-minute duplicate window.
        """
        stream = self._streams.get(topic)
        if stream is not None:
            return stream
        async with self._lock:
            stream = self._streams.get(topic)
            if stream is None:
                stream = await self._call(self._resolve_stream(topic))
                self._streams[topic] = stream
        return stream

    async def _resolve_stream(self, topic: str) -> Stream:
        if self._settings.streamName:
            return Stream(await self._join_shared_stream(self._settings.streamName, topic), True)
        try:
            name = await self._jsm.find_stream_name_by_subject(topic)
        except NotFoundError:
            return Stream(await self._create_stream(topic), False)
        info = await self._jsm.stream_info(name)
        return Stream(name, info.config.subjects != [topic])

    async def _create_stream(self, topic: str) -> str:
        name = safe_name(topic)
        config = api.StreamConfig(
            name=name,
            subjects=[topic],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            num_replicas=self._settings.replicas,
        )
        try:
            await self._jsm.add_stream(config)
        except BadRequestError:
            info = await self._jsm.stream_info(name)  # created meanwhile, or a name clash
            if not any(subject_matches(p, topic) for p in info.config.subjects or ()):
                raise BusError(
                    f"cannot create stream {name} for topic {topic}: a stream of that name "
                    f"exists for subjects {info.config.subjects}"
                ) from None
        return name

    async def _join_shared_stream(self, name: str, topic: str) -> str:
        try:
            info = await self._jsm.stream_info(name)
        except NotFoundError:
            await self._jsm.add_stream(
                api.StreamConfig(name=name, subjects=[topic], num_replicas=self._settings.replicas)
            )
            return name
        subjects = list(info.config.subjects or ())
        if any(subject_matches(p, topic) for p in subjects):
            return name
        try:
            owner = await self._jsm.find_stream_name_by_subject(topic)
        except NotFoundError:
            await self._jsm.update_stream(info.config.evolve(subjects=[*subjects, topic]))
            return name
        raise BusError(f"topic {topic} belongs to stream {owner}, not to streamName {name}")

    async def ensure_consumer(self, stream: str, topic: str, durable: str) -> None:
        """Create the group's durable pull consumer, or use the one that exists."""
        s = self._settings
        config = api.ConsumerConfig(
            name=durable,
            durable_name=durable,
            deliver_policy=_DELIVER[s.deliverPolicy],
            opt_start_seq=s.startSequence,
            opt_start_time=_utc(s.startTime),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=s.ackWait,
            max_deliver=s.maxDeliver,
            backoff=s.backOff,
            filter_subject=topic,
            max_ack_pending=s.maxAckPending,
            num_replicas=s.replicas,
            mem_storage=s.memoryStorage or None,
        )

        async def create() -> None:
            try:
                await self._jsm.add_consumer(stream, config)
            except BadRequestError as exc:
                # Exists with settings that cannot change (deliver policy...): the group's
                # position is what matters, so use it as it is, if it reads this topic.
                try:
                    info = await self._jsm.consumer_info(stream, durable)
                except NotFoundError:
                    raise exc from None
                if info.config.filter_subject not in (None, "", topic):
                    raise BusError(
                        f"consumer {durable} on stream {stream} reads "
                        f"{info.config.filter_subject}, not {topic}"
                    ) from None

        await self._call(create())

    async def _call(self, call: Any) -> Any:
        """Run a JetStream API call; translate its failures into BusError."""
        try:
            return await call
        except BusError:
            raise
        except ServiceUnavailableError as exc:
            raise BusError(
                f"JetStream at {self._url} is unavailable: {exc}", retriable=True
            ) from None
        except APIError as exc:
            raise BusError(f"JetStream at {self._url} refused: {exc.description}") from None
        except (OSError, NatsError, TimeoutError) as exc:
            raise BusError(f"cannot reach NATS at {self._url}: {exc}", retriable=True) from None


_DELIVER = {
    "all": api.DeliverPolicy.ALL,
    "last": api.DeliverPolicy.LAST,
    "new": api.DeliverPolicy.NEW,
    "sequence": api.DeliverPolicy.BY_START_SEQUENCE,
    "time": api.DeliverPolicy.BY_START_TIME,
}


def _utc(seconds: int | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.UTC)
