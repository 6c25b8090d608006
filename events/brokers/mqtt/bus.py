"""``pubsub.mqtt3``: an MQTT 3.1.1 broker as the bus, on the wire as Dapr's component.

Publish: the Dapr envelope (structured CloudEvents JSON) on the topic itself,
with QoS ``qos`` (1 by default) and ``retain`` (false by default); ``publish``
returns once the broker has answered PUBACK (PUBCOMP for QoS 2). Publishes share
one connection (client id ``<consumerID>-pub-<random>-0``, clean session) and may
run concurrently.

Subscribe: every member of a group has its own connection with a persistent
session (``cleanSession`` false) and subscribes to ``$share/<group>/<topic>``
with QoS 1, so the broker spreads the group's events over its members (shared
subscriptions, which Mosquitto, EMQX, HiveMQ and VerneMQ offer to 3.1.1
clients too). Its client id is stable: ``<consumerID>-<group>-<hash>-<slot>``,
where the hash covers consumerID, group and topic (ids stay short: at most 23
characters unless the slot number is large) and the slot is the lowest number
no open member of this bus uses for that topic and group. A member that
replaces a crashed or closed one therefore resumes its session, and the broker
sends it the events the old one left unacked (marked DUP), and those it queued
meanwhile. Acks are PUBACKs, sent only by ``Message.ack`` (paho's manual acks);
see :mod:`events.brokers.mqtt.member` for nack, close and redelivery.

What the broker must be configured for (Mosquitto names): sessions must outlive
restarts (``persistence true``; Mosquitto saves every ``autosave_interval`` and on
a clean shutdown, so a crash loses what arrived since the last save), and the
per-client queue must not drop events (``max_queued_messages``: Mosquitto's
default of 1000 drops QoS 1 events queued beyond it, silently). Mosquitto 2.0
saves sessions and their queued events but not shared subscriptions: after a
broker restart, a group gets the events published once a member has
re-subscribed (the core reconnects within its backoff), not those published
before that. A group's sessions keep receiving their share while their
member is away, so the set of slots in use should be stable: after scaling a
group down, events routed to the sessions of the slots no longer used wait
there until those slots are used again (or ``persistent_client_expiration``
deletes them). Two processes with the same ``consumerID`` use the same client
ids and take each other's connections over (as with Dapr): give replicas their
own ``consumerID`` (Dapr's ``{podName}``), stable across restarts.

Limits: no ordering (shared subscriptions spread events in no particular
order), no keys (``Message.key`` is the ``partitionkey`` extension, if any),
no delivery count beyond "maybe redelivered", no backlog query (MQTT cannot say
what a broker queues for a session, so no stall is reported for this bus).
Reconnecting is the core's job: an unreachable broker is
``BusError(retriable=True)`` from ``start``, ``publish``, ``subscribe`` and a
subscription's iteration. The publishing connection is held in an
:class:`events.bus.live.LiveClient`: it is used only while paho says it is
connected, and after a failed publish a fresh one is made.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from typing import ClassVar

from events.brokers.mqtt.client import MqttClient
from events.brokers.mqtt.member import MqttMember
from events.brokers.mqtt.settings import MqttSettings
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.bus.live import LiveClient
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

__all__ = ["MqttBus", "MqttSettings"]

#: Publishes waiting for their PUBACK at once (packet ids are 16 bits).
MAX_OUTSTANDING = 10_000
MAX_CLIENT_ID = 23  # the length every MQTT 3.1.1 broker must accept
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")


def member_client_id(consumer_id: str, group: str, topic: str, slot: int) -> str:
    """The stable client id of member ``slot`` of ``group`` on ``topic``."""
    digest = hashlib.blake2b(f"{consumer_id}\0{group}\0{topic}".encode(), digest_size=4).hexdigest()
    tail = f"-{digest}-{slot}"
    readable = _UNSAFE.sub("_", f"{consumer_id}-{group}")
    return readable[: max(1, MAX_CLIENT_ID - len(tail))] + tail


class MqttBus(EventBus):
    """An MQTT 3.1.1 broker as the event bus. Use from one event loop."""

    component_type: ClassVar[str] = "pubsub.mqtt3"

    def __init__(self, settings: MqttSettings, pubsub_name: str = "eventbus") -> None:
        self.settings = settings
        self.pubsub_name = pubsub_name
        self._consumer = settings.consumerID or "fnevents"
        self._endpoint = settings.endpoint
        self._publishers: LiveClient[MqttClient] = LiveClient(
            self._connect_publisher, f"the MQTT broker at {self._endpoint.address}"
        )
        self._outstanding: asyncio.Semaphore | None = None
        self._slots: dict[tuple[str, str], set[int]] = {}
        self._subscriptions: set[MqttMember] = set()
        self._closed = False

    def describe(self) -> str:
        return f"MQTT at {self._endpoint.address}"

    async def start(self) -> None:
        await self._publishers.get()

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        if self._closed:
            raise BusClosed("the MQTT bus is closed; cannot publish")
        payload = envelope.encode(event, topic, self.pubsub_name)
        if self._outstanding is None:
            self._outstanding = asyncio.Semaphore(MAX_OUTSTANDING)
        async with self._outstanding:
            connection = self._publishers.current() or await self._publishers.get()
            try:
                # no timeout of its own: a dead connection fails every waiting publish, and
                # the keepalive (KEEPALIVE) notices one that died silently
                await connection.publish(topic, payload, self.settings.qos, self.settings.retain)
            except BusError as exc:
                if exc.retriable:  # a fresh connection next time (see MqttClient.healthy)
                    self._publishers.suspect(connection)
                raise

    async def _connect_publisher(self) -> MqttClient:
        """One attempt at a publishing connection; LiveClient shares it between callers
        and keeps it while paho says it is connected. Raises BusError(retriable=True)."""
        client_id = member_client_id(self._consumer, "pub", uuid.uuid4().hex, 0)
        connection = MqttClient(self.settings, client_id, clean_session=True)
        await connection.connect()
        return connection

    # -- subscribing ------------------------------------------------------------------

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed("the MQTT bus is closed; cannot subscribe")
        if not group or any(c in group for c in "/+#"):
            raise BusError(
                f"MQTT group names cannot be empty or contain '/', '+' or '#': {group!r}"
            )
        used = self._slots.setdefault((topic, group), set())
        slot = next(n for n in range(len(used) + 1) if n not in used)
        used.add(slot)

        subscription = MqttMember(
            topic, group, self.pubsub_name, lambda: self._release(topic, group, slot, subscription)
        )
        connection = MqttClient(
            self.settings,
            member_client_id(self._consumer, group, topic, slot),
            clean_session=self.settings.cleanSession,
            on_message=subscription.on_message,
            on_lost=subscription.on_lost,
        )
        self._subscriptions.add(subscription)
        try:
            await subscription.open(connection, f"$share/{group}/{topic}")
        except BaseException:
            await subscription.close(drain_timeout=0)
            raise
        return subscription

    def _release(self, topic: str, group: str, slot: int, subscription: MqttMember) -> None:
        self._subscriptions.discard(subscription)
        used = self._slots.get((topic, group))
        if used is not None:
            used.discard(slot)
            if not used:
                del self._slots[(topic, group)]

    # -- closing ------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        await self._publishers.close(MqttClient.disconnect)
