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
pace is the core's backoff (:mod:`events.bus.resilient`), not a loop in here. The
client is held in an :class:`~events.bus.live.LiveClient`: a call never reuses a
client that nats-py says is closed (even when nats-py skipped its callbacks), and
after a failed call only one that answers a PING.

Settling across a reconnect: an ack or nak made while there is no live connection
waits here (up to ``MAX_UNSENT``) and goes out on the next connection. JetStream
keeps a durable consumer's pending messages across a server restart (file storage)
and takes an ack for one on any connection, so a message whose handler finished
during the outage is not delivered again, and the naks with which a closing member
gives back what it had read ahead make those messages available at once rather
than after ``ackWait``.

Backlog (:meth:`JetStreamBus.backlog`, the optional :class:`events.bus.backlog.Backlog`
capability): the group consumer's ``num_pending`` (not yet delivered) plus
``num_ack_pending`` (delivered, not yet acked).

Limits: no per-key ordering (see ``tests/bus/capabilities.py``). An event larger
than the server's ``max_payload`` (1 MB unless configured; 8 MB is NATS's
recommended ceiling) is refused with an error that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import ClassVar

from nats.errors import Error as NatsError

from events.brokers.jetstream.client import JetStreamClient, NoStream
from events.brokers.jetstream.member import JetStreamMember
from events.brokers.jetstream.settings import JetStreamSettings
from events.brokers.jetstream.streams import check_topic
from events.bus import envelope
from events.bus.contract import EventBus, Subscription
from events.bus.live import LiveClient
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

#: Room for the HPUB header block next to the payload when checking max_payload.
_HEADER_ROOM = 64
#: Settlements kept for the next connection while there is none; past this the oldest
#: are dropped (each such message is delivered again after ackWait: a duplicate at worst).
MAX_UNSENT = 20_000


class JetStreamBus(EventBus):
    """A bus on NATS JetStream. See the module docstring for streams, groups and limits."""

    component_type: ClassVar[str] = "pubsub.jetstream"

    def __init__(self, settings: JetStreamSettings, pubsub_name: str = "eventbus") -> None:
        self._settings = settings
        self._url = settings.natsURL
        self._pubsub_name = pubsub_name
        self._clients: LiveClient[JetStreamClient] = LiveClient(
            self._connect, f"NATS at {self._url}"
        )
        self._subscriptions: set[JetStreamMember] = set()
        self._topics: set[str] = set()  # topics already checked as subjects
        self._unsent: deque[tuple[str, bytes]] = deque(maxlen=MAX_UNSENT)
        self._resending: asyncio.Task[None] | None = None
        self._consumers: dict[tuple[str, str], tuple[str, str]] = {}  # -> (stream, consumer)
        self._closed = False

    def describe(self) -> str:
        return f"NATS JetStream at {self._url}"

    async def start(self) -> None:
        await self._live_link()

    async def _connect(self) -> JetStreamClient:
        return await JetStreamClient(self._settings, self._url).open()

    @property
    def _link(self) -> JetStreamClient | None:
        """The current connection if it is alive (None otherwise); no I/O."""
        return self._clients.current()

    async def _live_link(self) -> JetStreamClient:
        """A live connection, connecting (once, quickly) if there is none."""
        if self._closed:
            raise BusClosed("the JetStream bus is closed")
        link = await self._clients.get()
        if self._unsent:
            await self._send_unsent(link)
        return link

    def _check_topic(self, topic: str) -> None:
        if topic not in self._topics:
            check_topic(topic)
            self._topics.add(topic)

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        if self._closed:
            raise BusClosed("the JetStream bus is closed; cannot publish")
        self._check_topic(topic)
        link = self._clients.current() or await self._live_link()
        try:
            await self._publish(link, topic, event)
        except BusError as exc:
            if exc.retriable:
                self._clients.suspect(link)
            raise

    async def _publish(self, link: JetStreamClient, topic: str, event: CloudEvent) -> None:
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
        try:
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
                on_failure=lambda: self._clients.suspect(link),
            )
            await subscription.start()
        except BusError as exc:
            if exc.retriable:
                self._clients.suspect(link)
            raise
        self._consumers[(topic, group)] = (stream.name, consumer)
        self._subscriptions = {s for s in self._subscriptions if not s.closed}
        self._subscriptions.add(subscription)
        return subscription

    async def backlog(self, topic: str, group: str) -> int | None:
        """The group's messages not yet delivered plus those delivered and not yet acked;
        None before this bus has subscribed the group (it knows no consumer for it)."""
        names = self._consumers.get((topic, group))
        if names is None:
            return None
        async with self._clients.use() as link:
            return await link.pending(*names)

    async def _settle(self, reply: str, payload: bytes) -> None:
        """Ack or nak on the live connection; with none, keep it for the next one (see the
        module docstring), and make sure there will be a next one."""
        link = self._clients.current()
        if link is not None and not self._unsent:
            with contextlib.suppress(NatsError, OSError):
                await link.nc.publish(reply, payload)
                return
        self._unsent.append((reply, payload))
        if self._resending is None and not self._closed:
            self._resending = asyncio.create_task(self._resend(), name="jetstream settle")

    async def _resend(self) -> None:
        """Send the kept settlements once a connection is live (one attempt per second)."""
        try:
            while self._unsent and not self._closed:
                with contextlib.suppress(BusError):
                    await self._live_link()
                if self._unsent:
                    await asyncio.sleep(1.0)
        finally:
            self._resending = None

    async def _send_unsent(self, link: JetStreamClient) -> None:
        while self._unsent:
            reply, payload = self._unsent[0]
            try:
                await link.nc.publish(reply, payload)
            except (NatsError, OSError):
                return  # still kept: the next connection sends them
            self._unsent.popleft()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))
        self._subscriptions.clear()
        link = self._clients.current()
        if link is not None and self._unsent:
            await self._send_unsent(link)
        if self._resending is not None:
            self._resending.cancel()
        await self._clients.close(JetStreamClient.close)
