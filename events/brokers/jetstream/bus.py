"""``pubsub.jetstream``: NATS JetStream, read and written as Dapr's component does.

Wire format: every event is Dapr's envelope (:mod:`events.bus.envelope`) on the
subject named by the topic, with the ``Nats-Msg-Id`` header set to the event id, so
the stream drops a second copy of an event inside its duplicate window (two
minutes by default) and a Dapr app on the same subjects reads ordinary Dapr events.

Streams (:meth:`Streams.stream_for`): with ``streamName`` every topic goes into that
one stream. Without it, a topic uses the stream that already holds its subject
(made by an operator or shared with Dapr apps), and otherwise fnevents creates a
stream per topic, named after the topic (made safe: JetStream names cannot hold
``.``, ``*``, ``>`` or spaces). One stream per topic keeps each topic's retention,
limits and purge separate, and needs no subject plan up front.

Consumer groups: a group is a durable pull consumer on the topic's stream, named
after the group (``<durableName>-<group>`` when ``durableName`` is set; in a stream
shared by several topics, ``-<topic>`` is added, since each topic needs its own
position), filtered to the topic's subject, with explicit acks and the configured
``deliverPolicy`` (``all`` by default), created by the first ``subscribe`` of the
group. It exists before ``subscribe`` returns, so every event published afterwards
reaches the group. Members share it; see :mod:`events.brokers.jetstream.member` for
pulling, settling and closing. An event held by a member that dies comes back
after ``ackWait``. Closing never deletes the consumer: it is the group's position.

Connection: the first connect fails fast (about two seconds at most per server)
with a retriable :class:`BusError`; a lost connection fails what is waiting on it,
with a retriable error too, and the next call connects again, so the reconnect
pace is the core's backoff (:mod:`events.bus.resilient`), not a loop in here.

Limits: no per-key ordering (see ``tests/bus/capabilities.py``). An event larger
than the server's ``max_payload`` (1 MB unless configured; 8 MB is NATS's
recommended ceiling) is refused with an error that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from nats.errors import Error as NatsError

from events.brokers.jetstream.client import JetStreamClient, NoStream
from events.brokers.jetstream.member import JetStreamMember
from events.brokers.jetstream.settings import JetStreamSettings
from events.brokers.jetstream.streams import check_topic
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

#: Room for the HPUB header block next to the payload when checking max_payload.
_HEADER_ROOM = 64


class JetStreamBus(EventBus):
    """A bus on NATS JetStream. See the module docstring for streams, groups and limits."""

    component_type: ClassVar[str] = "pubsub.jetstream"

    def __init__(self, settings: JetStreamSettings, pubsub_name: str = "eventbus") -> None:
        self._settings = settings
        self._url = settings.natsURL
        self._pubsub_name = pubsub_name
        self._link: JetStreamClient | None = None
        self._connecting = asyncio.Lock()
        self._subscriptions: set[JetStreamMember] = set()
        self._topics: set[str] = set()  # topics already checked as subjects
        self._closed = False

    def describe(self) -> str:
        return f"NATS JetStream at {self._url}"

    async def start(self) -> None:
        await self._live_link()

    async def _live_link(self) -> JetStreamClient:
        """The current connection, connecting (once, quickly) if there is none."""
        link = self._link
        if link is not None and not link.lost.is_set():
            return link
        if self._closed:
            raise BusClosed("the JetStream bus is closed")
        async with self._connecting:
            link = self._link
            if link is None or link.lost.is_set():
                if link is not None:
                    await link.close()
                self._link = link = await JetStreamClient(self._settings, self._url).open()
        return link

    def _check_topic(self, topic: str) -> None:
        if topic not in self._topics:
            check_topic(topic)
            self._topics.add(topic)

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        if self._closed:
            raise BusClosed("the JetStream bus is closed; cannot publish")
        self._check_topic(topic)
        link = self._link
        if link is None or link.lost.is_set():
            link = await self._live_link()
        if not link.streams.has(topic):
            await link.streams.stream_for(topic)
        payload = envelope.encode(event, topic, self._pubsub_name)
        limit = link.nc.max_payload
        if len(payload) + len(event.id) + _HEADER_ROOM > limit:
            raise BusError(
                f"event {event.id} is {len(payload):,} bytes as a Dapr envelope, over the "
                f"max_payload of {limit:,} bytes of NATS at {self._url}; raise max_payload in "
                f"the server's configuration (NATS recommends at most 8MB)"
            )
        headers = {"Nats-Msg-Id": event.id}
        try:
            await link.publish(topic, payload, headers)
        except NoStream:  # the stream was deleted under us: make it again, once
            link.streams.forget(topic)
            await link.streams.stream_for(topic)
            await link.publish(topic, payload, headers)

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed("the JetStream bus is closed; cannot subscribe")
        self._check_topic(topic)
        link = await self._live_link()
        stream = await link.streams.stream_for(topic)
        consumer = stream.consumer_name(group, topic, self._settings.durableName)
        await link.streams.ensure_consumer(stream.name, topic, consumer)
        subscription = JetStreamMember(
            link,
            self._settle,
            topic,
            stream.name,
            consumer,
            self._pubsub_name,
            heartbeat=self._settings.heartbeat,
        )
        await subscription.start()
        self._subscriptions = {s for s in self._subscriptions if not s.closed}
        self._subscriptions.add(subscription)
        return subscription

    async def _settle(self, reply: str, payload: bytes) -> None:
        """Ack or nak on the live connection. With none, do nothing: the server redelivers
        the message after ackWait, which is what an unsettled message does anyway."""
        link = self._link
        if link is None or link.lost.is_set():
            return
        with contextlib.suppress(NatsError, OSError):  # it just went: same as no connection
            await link.nc.publish(reply, payload)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))
        self._subscriptions.clear()
        if self._link is not None:
            await self._link.close()
