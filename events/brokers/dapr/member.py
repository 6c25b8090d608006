"""One member of a group: a streaming subscription (``SubscribeTopicEventsAlpha1``).

The stream is bidirectional. We send the initial request (pub/sub name, topic,
``{"consumerID": group}``), wait for the sidecar's initial response (so the
subscription exists when ``subscribe`` returns), then read events and answer each
one by its event id: ``ack`` answers SUCCESS, ``nack`` answers RETRY (the message
is :mod:`events.brokers.dapr.message`; the stream is opened through
:class:`~events.brokers.dapr.client.DaprSidecarClient`).

- ``nack(delay)`` holds the RETRY back for ``delay`` seconds, so the event comes
  back no sooner than that; the sidecar's resiliency policy may add its own wait.
  Meanwhile the sidecar counts the event as in delivery, which occupies one of its
  component's delivery slots (``pubsub.redis`` has 10 by default). A hold longer
  than the component's redelivery timeout (``pubsub.redis``: processingTimeout,
  60 s) can bring a duplicate from the component meanwhile.
- ``Message.key`` is the event's ``partitionkey`` extension: the streaming API
  does not hand the publish key to subscribers.
- The streaming API carries no delivery count, so ``attempt`` comes from a
  :class:`DeliveryCounter` the bus shares between its subscriptions: deliveries of
  the same CloudEvent (``source`` and ``id``, which the spec says identify it) in
  the same group. A member in another process starts again at 1.
- ``close`` stops handing out events, waits for the ones handed out, then ends our
  half of the stream and waits (briefly) for the sidecar to end its half, so every
  answer we sent has been read. Events never answered (and RETRYs still held back)
  return to the group when the stream ends, as the contract asks.
- A lost stream is reported by ``__anext__`` as ``BusError(retriable=True)``; the
  core reconnects (see :mod:`events.bus.resilient`). No reconnecting here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator

import dapr.proto.runtime.v1 as api
import grpc

from events.brokers.dapr.client import DaprSidecarClient
from events.brokers.dapr.message import DaprMessage
from events.bus.contract import Message, Subscription
from events.errors import BusError

#: How long close() waits for the sidecar to finish the stream after our half ends.
STREAM_END_TIMEOUT = 2.0
_END = object()


class DeliveryCounter:
    """Deliveries per (topic, group, source, id), forgotten on ack; the oldest drop out."""

    def __init__(self, limit: int = 10_000) -> None:
        self._counts: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._limit = limit

    def next(self, key: tuple[str, ...]) -> int:
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        if len(self._counts) > self._limit:
            self._counts.popitem(last=False)
        return count

    def forget(self, key: tuple[str, ...]) -> None:
        self._counts.pop(key, None)


class DaprMember(Subscription):
    def __init__(
        self, client: DaprSidecarClient, topic: str, group: str, counter: DeliveryCounter
    ) -> None:
        self.topic = topic
        self.group = group
        self.counter = counter
        self._client = client
        self._outgoing: asyncio.Queue[api.SubscribeTopicEventsRequestAlpha1 | None] = (
            asyncio.Queue()
        )
        self._incoming: asyncio.Queue[object] = asyncio.Queue()
        self._handed_out: set[DaprMessage] = set()
        self._all_settled = asyncio.Event()
        self._all_settled.set()
        self._held_back: set[asyncio.TimerHandle] = set()
        self._call: grpc.aio.StreamStreamCall | None = None
        self._reader: asyncio.Task[None] | None = None
        self._failure: BusError | None = None
        self._writing = True
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self, confirm_within: float) -> DaprMember:
        """Start the stream; return once the sidecar has confirmed the subscription."""
        initial = api.SubscribeTopicEventsRequestAlpha1(
            initial_request=api.SubscribeTopicEventsRequestInitialAlpha1(
                pubsub_name=self._client.pubsub,
                topic=self.topic,
                metadata={"consumerID": self.group},
            )
        )
        call = self._client.open_stream(self._requests(initial))
        self._call = call
        doing = f"subscribe to {self.topic!r} as group {self.group!r}"
        try:
            first = await asyncio.wait_for(call.read(), confirm_within)
        except grpc.aio.AioRpcError as exc:
            raise self._client.rpc_error(exc, doing) from None
        except TimeoutError:
            call.cancel()
            raise BusError(
                f"cannot {doing}: the Dapr sidecar did not confirm within {confirm_within:g}s",
                retriable=True,
            ) from None
        if first is grpc.aio.EOF or not first.HasField("initial_response"):
            call.cancel()
            raise BusError(f"cannot {doing}: the sidecar ended the stream", retriable=True)
        self._reader = asyncio.create_task(self._read(call))
        return self

    async def _requests(
        self, initial: api.SubscribeTopicEventsRequestAlpha1
    ) -> AsyncIterator[api.SubscribeTopicEventsRequestAlpha1]:
        yield initial
        while (request := await self._outgoing.get()) is not None:
            yield request

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        failure = None
        try:
            while (response := await call.read()) is not grpc.aio.EOF:
                if response.HasField("event_message"):
                    self._incoming.put_nowait(response.event_message)
            failure = BusError(
                f"the Dapr sidecar ended the subscription to {self.topic!r}", retriable=True
            )
        except grpc.aio.AioRpcError as exc:
            failure = self._client.rpc_error(exc, f"read {self.topic!r}")
        finally:
            if not self._closed:
                self._failure = failure or BusError(
                    f"the subscription stream for {self.topic!r} failed", retriable=True
                )
            self._incoming.put_nowait(_END)

    async def __anext__(self) -> Message:
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise StopAsyncIteration
            item = await self._incoming.get()
            if item is _END:
                self._incoming.put_nowait(_END)  # for the next waiter
                continue
            if self._closed:
                continue  # not handed out: it returns to the group when the stream ends
            message = DaprMessage(self, item)  # type: ignore[arg-type]
            self._handed_out.add(message)
            self._all_settled.clear()
            return message

    def settle(self, message: DaprMessage) -> bool:
        """Mark ``message`` settled; False if it already was (or was given back on close)."""
        if message not in self._handed_out:
            return False
        self._handed_out.remove(message)
        if not self._handed_out:
            self._all_settled.set()
        return True

    def answer(self, event_id: str, status: int, delay: float = 0.0) -> None:
        if delay <= 0:
            self._send(event_id, status)
            return

        def send_later() -> None:
            self._held_back.discard(handle)
            self._send(event_id, status)

        handle = asyncio.get_running_loop().call_later(delay, send_later)
        self._held_back.add(handle)

    def _send(self, event_id: str, status: int) -> None:
        if not self._writing:
            return  # the stream is ending; the sidecar takes the event back
        self._outgoing.put_nowait(
            api.SubscribeTopicEventsRequestAlpha1(
                event_processed=api.SubscribeTopicEventsRequestProcessedAlpha1(
                    id=event_id, status=api.TopicEventResponse(status=status)
                )
            )
        )

    async def close(self, drain_timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._incoming.put_nowait(_END)  # wake members waiting in __anext__
        if self._handed_out and self._failure is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_settled.wait(), drain_timeout)
        self._handed_out.clear()
        for handle in self._held_back:
            handle.cancel()
        self._writing = False
        self._outgoing.put_nowait(None)  # ends our half of the stream after the answers
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), STREAM_END_TIMEOUT)
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
