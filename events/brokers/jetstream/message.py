"""One delivery from a JetStream pull consumer, and how a stream message becomes one.

:func:`decode` reads the delivery count and stream sequence from the message's
reply subject and the event from its payload. Settling goes back through the
member that handed the message out (see :mod:`events.brokers.jetstream.member`),
which counts what is still unsettled: ``ack`` sends ``+ACK``, ``nack(delay)``
sends ``-NAK`` with the delay.
"""

from __future__ import annotations

from typing import Protocol

import orjson
from nats.aio.msg import Msg

from events.bus import envelope
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent

ACK = b"+ACK"
NAK = b"-NAK"


class Settler(Protocol):
    """What a message needs of its member: a way to send its one settlement."""

    async def settle(self, reply: str, payload: bytes) -> None: ...


class JetStreamMessage(Message):
    __slots__ = ("_member", "_reply")

    def __init__(
        self,
        topic: str,
        event: CloudEvent,
        attempt: int,
        reply: str,
        member: Settler,
    ) -> None:
        super().__init__(topic, event, None, attempt)
        self._reply = reply
        self._member: Settler | None = member

    async def ack(self) -> None:
        member, self._member = self._member, None
        if member is not None:
            await member.settle(self._reply, ACK)

    async def nack(self, delay: float = 0.0) -> None:
        member, self._member = self._member, None
        if member is not None:
            payload = NAK + b" " + orjson.dumps({"delay": int(delay * 1e9)}) if delay > 0 else NAK
            await member.settle(self._reply, payload)


def decode(msg: Msg, topic: str, pubsub_name: str, member: Settler) -> JetStreamMessage:
    """The delivery of one stream message (one with a reply subject). Never raises: a
    payload that is no CloudEvent becomes an undecodable stand-in for the dead letter."""
    tokens = msg.reply.split(".")
    # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
    # and, with a domain: $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>...
    at = 4 if len(tokens) == 9 else 6
    attempt, fallback_id = int(tokens[at]), f"{topic}/{tokens[at + 1]}"
    try:
        event = envelope.decode(
            msg.data, topic=topic, pubsub_name=pubsub_name, fallback_id=fallback_id
        )
    except Exception as exc:  # noqa: BLE001 - any payload must reach a dead letter, not stop us
        reason = exc if isinstance(exc, InvalidCloudEvent) else f"{type(exc).__name__}: {exc}"
        event = envelope.undecodable(msg.data, reason, topic=topic, fallback_id=fallback_id)
    return JetStreamMessage(topic, event, attempt, msg.reply, member)
