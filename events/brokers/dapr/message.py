"""One event from a Dapr streaming subscription, as a :class:`DaprMessage`.

The sidecar's ``TopicEventRequest`` becomes a CloudEvent through
:mod:`events.brokers.dapr.codec`; one it cannot decode is handed over as an
undecodable envelope rather than dropped. ``ack`` answers SUCCESS and ``nack``
answers RETRY through the member that handed the message out
(:mod:`events.brokers.dapr.member`), named here only by the :class:`Member` protocol.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import dapr.proto.runtime.v1 as api
from google.protobuf import json_format

from events.brokers.dapr.codec import from_topic_event
from events.bus import envelope
from events.bus.contract import Message
from events.errors import InvalidCloudEvent

_SUCCESS = api.TopicEventResponse.TopicEventResponseStatus.SUCCESS
_RETRY = api.TopicEventResponse.TopicEventResponseStatus.RETRY


class Counter(Protocol):
    """Deliveries of one CloudEvent in one group, which ``attempt`` is read from."""

    def next(self, key: tuple[str, ...]) -> int: ...

    def forget(self, key: tuple[str, ...]) -> None: ...


class Member(Protocol):
    """What a message reads of, and calls on, the member that handed it out."""

    @property
    def topic(self) -> str: ...

    @property
    def group(self) -> str: ...

    @property
    def counter(self) -> Counter: ...

    def settle(self, message: DaprMessage) -> bool: ...

    def answer(self, event_id: str, status: int, delay: float = 0.0) -> None: ...


class DaprMessage(Message):
    __slots__ = ("_answer_id", "_count_key", "_member")

    def __init__(self, member: Member, request: api.TopicEventRequest) -> None:
        topic = member.topic
        try:
            event = from_topic_event(request)
        except InvalidCloudEvent as exc:
            raw = json_format.MessageToJson(request).encode()
            event = envelope.undecodable(
                raw, exc, topic=topic, fallback_id=request.id or uuid.uuid4().hex
            )
        key = event.extensions.get("partitionkey")
        self._answer_id = request.id
        self._count_key = (topic, member.group, event.source, event.id)
        self._member = member
        attempt = member.counter.next(self._count_key)
        super().__init__(topic, event, key if isinstance(key, str) else None, attempt)

    async def ack(self) -> None:
        if self._member.settle(self):
            self._member.counter.forget(self._count_key)
            self._member.answer(self._answer_id, _SUCCESS)

    async def nack(self, delay: float = 0.0) -> None:
        if self._member.settle(self):
            self._member.answer(self._answer_id, _RETRY, delay)
