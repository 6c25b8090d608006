"""One group member of ``pubsub.mqtt3``: its own MQTT connection and persistent session.

Delivery: the broker sends up to its in-flight window (Mosquitto's
``max_inflight_messages``, 20 by default) of unacked QoS 1 messages; they wait
here until ``__anext__`` hands them out. ``ack`` sends PUBACK (paho's manual
acks). ``nack`` cannot tell an MQTT broker anything (3.1.1 has no negative
ack), so the message stays un-PUBACKed and is handed out again *by this
member* after the delay, with ``attempt`` increased. While held, it keeps its
place in the broker's in-flight window.

``attempt`` is 2 for a message the broker marks DUP (sent again after a
reconnect of the same session), else 1: MQTT only says "maybe redelivered",
and keeps no count, so a message whose member crashed twice still says 2.

Close: stop handing out, wait up to ``drain_timeout`` for settlements, then
DISCONNECT without acking the rest. The session (client id) keeps them, and the
subscription too, so the broker goes on queueing this member's share; the next
member to take the same slot (see ``MqttBus.subscribe``) gets them all.

A lost connection ends the subscription with ``BusError(retriable=True)``;
messages not yet acked come back from the broker when the core subscribes
again (same slot, same session).

How a received PUBLISH becomes a message: :mod:`events.brokers.mqtt.message`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as paho

from events.brokers.mqtt.client import MqttClient
from events.brokers.mqtt.message import MqttMessage, decode_publish
from events.bus.contract import Message, Subscription
from events.errors import BusError


class MqttMember(Subscription):
    """Use from the event loop that created it; ``open`` before iterating."""

    def __init__(
        self,
        topic: str,
        group: str,
        pubsub_name: str,
        release: Callable[[], None],
    ) -> None:
        self.topic, self.group = topic, group
        self._pubsub_name = pubsub_name
        self._release = release  # frees this member's slot in the bus
        self._client: MqttClient | None = None
        self._ready: deque[MqttMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._handed_out: set[MqttMessage] = set()
        self._all_settled = asyncio.Event()
        self._all_settled.set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._lost: BusError | None = None
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None

    async def open(self, client: MqttClient, topic_filter: str) -> None:
        """Connect and subscribe; returns once the broker has sent SUBACK."""
        self._client = client
        await client.connect()
        granted = await client.subscribe(topic_filter, 1)
        if granted not in (1, 2):
            where = client.endpoint.address
            if granted == 0:
                problem = "granted only QoS 0, which would lose events"
            else:
                problem = "refused it (does the broker support shared subscriptions? ACLs?)"
            raise BusError(f"subscribing to {topic_filter!r}: the MQTT broker at {where} {problem}")

    # -- from the client (loop thread) ----------------------------------------------

    def on_message(self, raw: paho.MQTTMessage) -> None:
        topic, event = decode_publish(raw, self.topic, self._pubsub_name)
        self._put(MqttMessage(topic, event, 2 if raw.dup else 1, self, raw.mid, raw.qos))

    def on_lost(self, error: BusError) -> None:
        self._lost = error
        self._ready.clear()  # their acks could not reach the broker: it sends them again
        self._wake()

    # -- iteration ---------------------------------------------------------------------

    async def __anext__(self) -> Message:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._lost is not None:
                raise self._lost
            if self._ready:
                message = self._ready.popleft()
                self._handed_out.add(message)
                self._all_settled.clear()
                return message
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def settle(self, message: MqttMessage, acked: bool) -> None:
        if message not in self._handed_out:
            return
        self._handed_out.remove(message)
        if not self._handed_out:
            self._all_settled.set()
        if acked and self._client is not None:
            self._client.ack(message.mid, message.qos)

    def redeliver(self, message: MqttMessage, delay: float) -> None:
        again = MqttMessage(
            message.topic, message.event, message.attempt + 1, self, message.mid, message.qos
        )
        if delay <= 0:
            self._put(again)
            return
        timer: asyncio.TimerHandle

        def due() -> None:
            self._timers.discard(timer)
            self._put(again)

        timer = asyncio.get_running_loop().call_later(delay, due)
        self._timers.add(timer)

    def _put(self, message: MqttMessage) -> None:
        if self._closed or self._lost is not None:
            return  # left unacked: the session keeps it for the next member in this slot
        self._ready.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- closing -----------------------------------------------------------------------

    async def close(self, drain_timeout: float = 5.0) -> None:
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close(drain_timeout))
        await asyncio.shield(self._close_task)

    async def _close(self, drain_timeout: float) -> None:
        self._closed = True
        self._wake()
        try:
            if self._handed_out and self._lost is None and drain_timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_settled.wait(), drain_timeout)
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._ready.clear()
            self._handed_out.clear()
            if self._client is not None:
                await self._client.disconnect()
        finally:
            self._release()
