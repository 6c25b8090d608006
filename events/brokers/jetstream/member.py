"""One member of a consumer group on JetStream: a continuous pull on the group's
durable consumer. What it hands out: :mod:`events.brokers.jetstream.message`.

Pulling: the member keeps pull requests open on the consumer for up to
``batch`` messages in all (received and not yet read, or still owed by the server). The server
sends each message as soon as it is stored, so one waiting message costs no extra
round trip; when what is owed plus buffered falls to half the batch, the member
asks for the difference. Requests expire after ``expires`` seconds (the server
then says how many it still owed) and carry an idle heartbeat; a watchdog that
hears nothing for two heartbeats starts the pull afresh. Members of a group each
pull the same durable consumer and the server spreads messages over their open
requests, which is how the work is shared.

Settling: ``ack`` sends ``+ACK``, ``nack(delay)`` sends ``-NAK`` with the delay, on
the bus's live connection, so a message read before a reconnect can still be
settled after it (the bus keeps a settlement made while there is no connection for
the next one). ``attempt`` is the server's delivery count.

A lost connection: the member stops handing out at once, even what it has read ahead
(its ack could not reach the server until a new connection exists, and a message
handed out then would be delivered again after ``ackWait``: a duplicate per message
read ahead); ``__anext__`` raises the retriable error, and closing gives what was
read ahead back with naks, which the bus sends on the next connection. "Lost" is the
connection's own word (:attr:`JetStreamClient.alive`, checked before each message and
by the watchdog), not only nats-py's callbacks, which it can skip.

Closing: stop pulling (the inbox goes away, so the server hands this member
nothing more); messages buffered but never handed out are nak'ed back to the
group at once; then wait up to ``drain_timeout`` for the handed-out ones to be
settled. Any still unsettled are left alone: they return after ``ackWait``, and a
handler that finishes before that still acks in time. The durable consumer is
never deleted: it is the group's position.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.errors import Error as NatsError

from events.brokers.jetstream.client import JetStreamClient
from events.brokers.jetstream.message import NAK, decode
from events.bus.contract import Message, Subscription
from events.errors import BusError

#: Messages a member asks for ahead of its consumer (owed by the server + buffered).
PULL_BATCH = 500
DEFAULT_HEARTBEAT = 5.0

#: Sends one settlement (``+ACK`` or ``-NAK ...``) to a message's reply subject.
Settle = Callable[[str, bytes], Awaitable[None]]


class JetStreamMember(Subscription):
    """A member pulling the group's durable consumer; see the module docstring."""

    def __init__(
        self,
        link: JetStreamClient,
        settle: Settle,
        topic: str,
        stream: str,
        consumer: str,
        pubsub_name: str,
        heartbeat: float | None = None,
        batch: int = PULL_BATCH,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        #: told when this member fails retriably, so the connection must prove itself
        self._on_failure = on_failure
        self._link = link
        self._send_settlement = settle
        self._pubsub_name = pubsub_name
        self._next_subject = f"{link.api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._batch = batch
        self._heartbeat = heartbeat or DEFAULT_HEARTBEAT
        expires = max(30.0, 4 * self._heartbeat)
        self._request = orjson.dumps(
            {"expires": int(expires * 1e9), "idle_heartbeat": int(self._heartbeat * 1e9)}
        )[:-1]  # the batch size is appended per request
        self._inbox = link.nc.new_inbox()
        self._nats_sub: NatsSubscription | None = None
        self._queue: asyncio.Queue[Msg | None] = asyncio.Queue()
        self._owed = 0  # messages requested and not yet received
        self._heard = time.monotonic()
        self._failure: BusError | None = None
        self._handed_out = 0
        self._all_settled = asyncio.Event()
        self._all_settled.set()
        self._closed = False
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> JetStreamMember:
        # No callback: nats-py queues what arrives on the inbox and __anext__ reads that
        # queue itself, which saves a task switch per message (a callback runs in a task
        # of its own, and would then have to wake the reader). The limits are off
        # because the pull itself bounds what can arrive: ``batch`` messages at most.
        self._nats_sub = await self._link.nc.subscribe(
            self._inbox, pending_msgs_limit=0, pending_bytes_limit=0
        )
        self._queue = self._nats_sub._pending_queue  # nats-py's, see above
        self._link.on_lost(self._on_link_lost)  # (forgotten again on close)
        await self._pull()
        self._watchdog = asyncio.create_task(self._watch(), name=f"jetstream pull {self.topic}")
        return self

    # -- receiving ----------------------------------------------------------------

    async def __anext__(self) -> Message:
        queue = self._queue
        link = self._link
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._failure is not None:  # (what is queued is given back by close())
                raise self._failure
            if not link.alive:  # gone without nats-py's callbacks (see the module doc)
                self._lost_silently()
                continue
            if queue.empty():
                msg = await queue.get()
            else:
                msg = queue.get_nowait()
            queue.task_done()  # (what nats-py's drain waits for)
            if msg is None:  # woken by close() or a failure
                continue
            self._heard = time.monotonic()
            if not msg.reply:  # status messages have no reply subject; stream messages do
                await self._on_status(msg.headers or {})
                continue
            if self._owed > 0:  # (more than asked for can come after a watchdog restart)
                self._owed -= 1
            if self._owed + queue.qsize() <= self._batch // 2:
                await self._pull()
            self._handed_out += 1
            self._all_settled.clear()
            return decode(msg, self.topic, self._pubsub_name, self)

    async def _on_status(self, headers: dict[str, str]) -> None:
        status = headers.get("Status")
        if status == "100":  # idle heartbeat: the pull is alive
            return
        owed = headers.get("Nats-Pending-Messages")
        self._owed = max(0, self._owed - int(owed)) if owed else 0
        description = headers.get("Description", "")
        if status == "409" and description.startswith("Exceeded Max"):
            self._fail(BusError(f"JetStream refused the pull on {self.topic}: {description}"))
        elif (status == "409" and "Deleted" in description) or status == "503":
            self._fail(
                BusError(
                    f"the consumer for {self.topic} went away ({status} {description})",
                    retriable=True,
                )
            )
        else:  # 408 expired, 409 leadership change...: ask again
            await self._pull()

    async def _pull(self) -> None:
        """Ask for enough messages to have ``batch`` owed or queued again."""
        wanted = self._batch - self._owed - self._queue.qsize()
        if self._closed or self._failure or wanted < self._batch // 2:
            return
        self._owed += wanted
        request = self._request + b',"batch":%d}' % wanted
        try:
            await self._link.nc.publish(self._next_subject, request, self._inbox)
        except (OSError, NatsError):
            self._owed -= wanted
            self._fail(self._link.lost_error())

    async def _watch(self) -> None:
        """Restart the pull if the server has gone quiet (no message, no heartbeat); fail
        at once if the connection is gone."""
        while not self._closed and self._failure is None:
            await asyncio.sleep(self._heartbeat)
            if not self._link.alive:
                self._lost_silently()
                return
            quiet = time.monotonic() - self._heard > 2 * self._heartbeat
            if quiet and self._queue.empty():  # (a full queue just means nobody reads)
                self._owed = 0
                self._heard = time.monotonic()
            await self._pull()

    def _on_link_lost(self) -> None:
        self._fail(self._link.lost_error())

    def _lost_silently(self) -> None:
        """The connection says it is gone but nobody was told: tell everyone (discarding
        it calls every listener, this member's ``_on_link_lost`` included)."""
        self._fail(self._link.lost_error())
        task = asyncio.ensure_future(self._link.discard())
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _fail(self, error: BusError) -> None:
        if self._failure is None:
            self._failure = error
            if error.retriable and self._on_failure is not None:
                self._on_failure()
        self._queue.put_nowait(None)  # wake a reader waiting in __anext__

    # -- settling and closing -----------------------------------------------------

    async def settle(self, reply: str, payload: bytes) -> None:
        self._handed_out -= 1
        if not self._handed_out:
            self._all_settled.set()
        await self._send_settlement(reply, payload)

    def _take_queued(self) -> list[Msg]:
        """Empty the queue; the stream messages that were in it."""
        taken = []
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            self._queue.task_done()
            if msg is not None and msg.reply:
                taken.append(msg)
        return taken

    async def _drain_inbox(self, nats_sub: NatsSubscription) -> list[Msg]:
        """Stop the inbox without dropping what is on its way to it.

        A plain unsubscribe forgets the inbox at once, so messages the server had already
        sent (still in the socket) would be dropped here while the server counts them as
        delivered: they would come back only after ackWait. nats-py's drain unsubscribes,
        makes a round trip (after which everything sent has arrived) and then waits for
        the queue to be emptied, which this does meanwhile, keeping what it takes.
        """
        taken: list[Msg] = []
        drained = asyncio.create_task(nats_sub.drain())
        while not drained.done():
            taken += self._take_queued()
            await asyncio.wait({drained}, timeout=0.005)
        with contextlib.suppress(NatsError, OSError, TimeoutError):
            drained.result()
        return taken

    async def close(self, drain_timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._link.forget(self._on_link_lost)
        unused = self._take_queued()
        self._queue.put_nowait(None)  # a member waiting in __anext__ stops
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._nats_sub is not None:
            unused += await self._drain_inbox(self._nats_sub)
        unused += self._take_queued()
        self._queue.put_nowait(None)  # (again: taking the queued may have taken the first)
        for msg in unused:  # never handed out: back to the group now, not after ackWait
            await self._send_settlement(msg.reply, NAK)
        if self._handed_out:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_settled.wait(), drain_timeout)
