"""The transport side of the ``mqtt`` source: receive over one session, ack in arrival order.

:class:`MqttReceiver` connects with the source's client id (a persistent session
unless ``clean_session``), subscribes to the topic filter, and hands each
message, as a :class:`Received`, to the source's handle. It PUBACKs a message
only once that handle returned (the event is on the bus, or dead-lettered), in
arrival order as MQTT requires, with up to ``WORKERS`` handles running at once
(see :mod:`events.brokers.mqtt.acks`).

QoS 2 is subscribed to as QoS 1: MQTT's QoS 2 hand-off completes (PUBREC) before
the handle runs, so a crash at the wrong moment would lose the message; QoS 1
redelivers it instead.

Turning a message into a CloudEvent is the source's job (``sources.mqtt``), not
this module's: it only says what the message carries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import paho.mqtt.client as paho

from events.brokers.mqtt.acks import InOrderAcks
from events.brokers.mqtt.client import MqttClient
from events.brokers.mqtt.settings import MqttSourceSettings
from events.errors import BusError

#: Messages handled (decoded and emitted) at once; acks still go out in arrival order.
WORKERS = 16
#: MQTT 5 Receive Maximum: unacked messages the broker may send at once. (For 3.1.1
#: the broker decides: Mosquitto's max_inflight_messages, 20 by default.)
RECEIVE_MAXIMUM = 64
#: How a shared subscription's topic filter starts: ``$share/<group>/<filter>``.
SHARED_PREFIX = "$share/"


class Received:
    """What one received message carries, read from paho once."""

    __slots__ = ("content_type", "payload", "raw_topic", "topic", "user_properties")

    def __init__(self, message: paho.MQTTMessage) -> None:
        self.payload: bytes = message.payload
        properties = message.properties  # MQTT 5 only
        #: The MQTT 5 Content Type, if one was sent.
        self.content_type: str | None = getattr(properties, "ContentType", None)
        #: The MQTT 5 User Properties, as (name, value) pairs.
        self.user_properties: Sequence[tuple[str, str]] = (
            getattr(properties, "UserProperty", None) or ()
        )
        #: The topic name as the broker sent it, which need not be valid UTF-8.
        self.raw_topic: bytes = message._topic  # paho's decoded ``topic`` raises if it is not
        #: The topic name, or None if it is not valid UTF-8.
        self.topic: str | None
        try:
            self.topic = message.topic
        except UnicodeDecodeError:
            self.topic = None


Handle = Callable[[Received], Awaitable[None]]


class MqttReceiver:
    """One subscription of the source; ``run`` it again after it raises (a new connection,
    the same session)."""

    def __init__(
        self,
        settings: MqttSourceSettings,
        client_id: str,
        topic_filter: str,
        qos: int,
        *,
        clean_session: bool,
        protocol: Literal["3.1.1", "5"],
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.topic_filter = topic_filter
        self.qos = qos
        self.clean_session = clean_session
        self.protocol = protocol
        endpoint = settings.endpoint
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        #: ``host:port`` as it goes in a url (an IPv6 host in brackets).
        self.address = f"{host}:{endpoint.port}"

    async def run(self, handle: Handle) -> None:
        """Connect, subscribe and hand each message to ``handle``; raise when the link fails
        or a handle raises (what was not acked comes back on the next run)."""
        client: MqttClient

        def ack(message: paho.MQTTMessage) -> None:
            client.ack(message.mid, message.qos)

        window: InOrderAcks[paho.MQTTMessage] = InOrderAcks(
            lambda message: handle(Received(message)),
            ack,
            WORKERS,
            needs_ack=lambda m: m.qos > 0,
        )
        client = MqttClient(
            self.settings,
            self.client_id,
            clean_session=self.clean_session,
            on_message=window.put,
            on_lost=window.fail,
            protocol=self.protocol,
            receive_maximum=RECEIVE_MAXIMUM,
        )
        try:
            await client.connect()
            wanted = min(self.qos, 1)  # QoS 2 is received as 1: see the module docstring
            granted = await client.subscribe(self.topic_filter, wanted)
            if granted >= 0x80 or granted < wanted:
                raise BusError(self._refused(granted))
            await window.run()
        finally:
            await client.disconnect()

    def _refused(self, granted: int) -> str:
        where = f"the MQTT broker at {self.address}"
        if granted < 0x80:
            return (
                f"subscribing to {self.topic_filter!r}: {where} granted only QoS {granted}, "
                "which would lose messages"
            )
        return (
            f"subscribing to {self.topic_filter!r}: {where} refused it (reason code {granted}; "
            "ACLs? shared subscriptions?)"
        )


def topic_filter_error(topic: str) -> str | None:
    """What is wrong with an MQTT topic filter (MQTT 4.7), or None."""
    if not topic:
        return "the topic filter is empty"
    levels = topic.split("/")
    if topic.startswith(SHARED_PREFIX):
        group, levels = levels[1], levels[2:]
        if not group or "+" in group or "#" in group:
            return f"a shared subscription is $share/<group>/<filter>, group without +/#: {topic!r}"
        if not levels:
            return f"a shared subscription needs a filter after $share/<group>/: {topic!r}"
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"'#' must be a whole level, and the last one: {topic!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level: {topic!r}"
    return None
