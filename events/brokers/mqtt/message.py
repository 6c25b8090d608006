"""One delivery of an MQTT message on ``pubsub.mqtt3``, and how a received PUBLISH becomes
an event.

A message remembers its packet id and QoS, which its PUBACK needs; settling goes
through the member that received it (see :mod:`events.brokers.mqtt.member`), which
owns the bookkeeping. Here that member is only the :class:`Settles` protocol.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import paho.mqtt.client as paho

from events.bus import envelope
from events.bus.contract import Message
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent


class Settles(Protocol):
    """What a message asks of the member that handed it out."""

    def settle(self, message: MqttMessage, acked: bool) -> None: ...

    def redeliver(self, message: MqttMessage, delay: float) -> None: ...


class MqttMessage(Message):
    __slots__ = ("_member", "_settled", "mid", "qos")

    def __init__(
        self,
        topic: str,
        event: CloudEvent,
        attempt: int,
        member: Settles,
        mid: int,
        qos: int,
    ) -> None:
        key = event.extensions.get("partitionkey")
        super().__init__(topic, event, key if isinstance(key, str) else None, attempt)
        self._member = member
        #: The packet id and QoS the broker sent it with: what its PUBACK (or PUBCOMP) names.
        self.mid = mid
        self.qos = qos
        self._settled = False

    async def ack(self) -> None:
        if not self._settled:
            self._settled = True
            self._member.settle(self, acked=True)

    async def nack(self, delay: float = 0.0) -> None:
        if not self._settled:
            self._settled = True
            self._member.settle(self, acked=False)
            self._member.redeliver(self, delay)


def decode_publish(
    raw: paho.MQTTMessage, subscribed: str, pubsub_name: str
) -> tuple[str, CloudEvent]:
    """The topic and the event of a received PUBLISH. ``subscribed`` (the bus topic) stands
    in for a topic name that is not valid UTF-8. Never raises: an invalid CloudEvent becomes
    an undecodable stand-in for the dead letter."""
    payload = raw.payload
    try:
        topic = raw.topic
    except UnicodeDecodeError:  # brokers should refuse such topics; never crash on one
        topic = subscribed
    fallback_id = f"{topic}/{hashlib.blake2b(payload, digest_size=12).hexdigest()}"
    try:
        event = envelope.decode(
            payload, topic=topic, pubsub_name=pubsub_name, fallback_id=fallback_id
        )
    except InvalidCloudEvent as exc:
        event = envelope.undecodable(payload, exc, topic=topic, fallback_id=fallback_id)
    except Exception as exc:  # noqa: BLE001 - if this raised, paho would handle the packet again
        reason = f"{type(exc).__name__}: {exc}"
        event = envelope.undecodable(payload, reason, topic=topic, fallback_id=fallback_id)
    return topic, event
