"""Dead letters read back from their topics: the :class:`Letter` value, and the
:class:`LetterStore` contract a broker implements to list and replay them.

Three writers put letters on dead-letter topics, and each records the failure in
extension attributes:

- a Trigger subscriber whose sink gave up (``triggers.subscriber.dead_letter``):
  ``knativeerrordest`` (the sink URL), ``knativeerrorcode`` (the last HTTP status),
  ``knativeerrordata`` (the response body, base64), ``fnerrorreason``,
  ``fnerrorattempts``;
- the bus's bounded redelivery (poison messages of triggers and async functions,
  ``events.bus.poison``): ``fnerrorreason``, ``fnerrorattempts`` and ``fnerrortopic``
  (the topic the message was read from);
- an EventSource's rejected input (``events.delivery.outlets``): a
  ``dev.fnevents.source.rejected`` event with ``fnerrorreason`` and no destination.
"""

from __future__ import annotations

import abc
import base64
import binascii
from dataclasses import dataclass
from typing import Any, ClassVar

from events.bus.contract import EventBus, Message
from events.cloudevent import CloudEvent

#: The consumer group ``deadletters list`` and ``replay`` read dead-letter topics as.
REPLAY_GROUP = "fnevents-deadletters"

#: The attributes a dead letter adds to the original event; replay removes them all.
ERROR_ATTRIBUTES = (
    "knativeerrordest",
    "knativeerrorcode",
    "knativeerrordata",
    "fnerrorreason",
    "fnerrorattempts",
    "fnerrortopic",
)


@dataclass(frozen=True)
class Destination:
    """Where a letter goes on replay: an HTTP sink or a bus topic (exactly one)."""

    url: str | None = None
    topic: str | None = None

    def __str__(self) -> str:
        return self.url if self.url else f"topic {self.topic}"


@dataclass(frozen=True)
class Letter:
    """One letter on a dead-letter topic. ``position`` is where it sits on the topic
    (stream entry id, ``partition/offset`` or stream sequence); ``pending`` means a
    replay took it and did not ack it: it failed there, or a replay holds it now."""

    topic: str
    position: str
    event: CloudEvent
    pending: bool = False

    @property
    def destination(self) -> Destination | None:
        """Where the event was going when it failed, if the letter says."""
        dest = self.event.extensions.get("knativeerrordest")
        if isinstance(dest, str):
            if dest.startswith("topic "):
                return Destination(topic=dest.removeprefix("topic ").strip())
            if dest.startswith(("http://", "https://")):
                return Destination(url=dest)
        topic = self.event.extensions.get("fnerrortopic")
        return Destination(topic=str(topic)) if topic else None

    @property
    def reason(self) -> str | None:
        value = self.event.extensions.get("fnerrorreason")
        return None if value is None else str(value)

    @property
    def attempts(self) -> int | None:
        value = self.event.extensions.get("fnerrorattempts")
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None

    @property
    def status(self) -> str | None:
        value = self.event.extensions.get("knativeerrorcode")
        return None if value is None else str(value)

    @property
    def response(self) -> str | None:
        """The recorded response excerpt, decoded from base64 as text."""
        value = self.event.extensions.get("knativeerrordata")
        if not value:
            return None
        try:
            raw = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            return f"(not base64: {value!r})"
        return raw.decode("utf-8", "replace")

    def stripped(self) -> CloudEvent:
        """The original event: the letter without its error attributes."""
        return self.event.evolve(**dict.fromkeys(ERROR_ATTRIBUTES))

    def summary(self, with_data: bool = False) -> dict[str, Any]:
        """The letter as a JSON-ready mapping (``deadletters list --json``)."""
        event = self.event
        out: dict[str, Any] = {
            "topic": self.topic,
            "position": self.position,
            "pending": self.pending,
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "destination": str(self.destination) if self.destination else None,
            "status": self.status,
            "attempts": self.attempts,
            "reason": self.reason,
            "response": self.response,
        }
        if with_data:
            out.update(data_fields(event))
        return out


def data_fields(event: CloudEvent) -> dict[str, Any]:
    """``data`` as JSON can carry it: binary data goes base64 under ``data_base64``."""
    data = event.data
    if isinstance(data, bytes | bytearray | memoryview):
        return {
            "datacontenttype": event.datacontenttype,
            "data_base64": base64.b64encode(bytes(data)).decode("ascii"),
        }
    return {"datacontenttype": event.datacontenttype, "data": data}


class LetterStore(abc.ABC):
    """Dead letters of one bus. Create with ``events.deadletters.stores.open_store``;
    ``close`` when done."""

    #: The group's place on a topic is a position (Kafka offsets, the JetStream ack floor),
    #: not a set of acked letters: a letter acked after an unacked one would still be read
    #: again, so replay stops at the first letter it cannot deliver.
    positional: ClassVar[bool] = False

    def __init__(self, settings: Any, pubsub_name: str) -> None:
        self.settings = settings
        self.pubsub_name = pubsub_name

    @abc.abstractmethod
    async def browse(self, topic: str, limit: int | None = None) -> list[Letter]:
        """The letters on ``topic`` that REPLAY_GROUP has not acked, oldest first, at most
        ``limit``. Takes nothing: the same letters are there afterwards."""

    @abc.abstractmethod
    def replay_bus(self) -> EventBus:
        """A bus (not started) whose new groups start at the beginning of a topic."""

    async def release(self, messages: list[Message]) -> None:
        """Give back messages replay took and did not ack, so the next replay gets them
        at once. By default closing the subscription does that."""
        del messages

    async def close(self) -> None:
        """Release connections; idempotent."""
        return None
