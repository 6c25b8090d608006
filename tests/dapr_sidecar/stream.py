"""Test double (not Dapr): one SubscribeTopicEventsAlpha1 stream, after its initial request.

The pump takes events from the backing bus's subscription and writes them to the
app. It keeps at most ``max_in_flight`` of them unanswered, much as a Dapr
component's worker pool bounds its deliveries.

Answers are matched by event id, as in Dapr's streamer (a second event with the
same id waits in line behind the first). They settle the backing message:

- SUCCESS acks it.
- RETRY, or any unknown status, nacks it.
- DROP acks it, after republishing the original event to the dead-letter topic
  when one was given.

When the stream ends, the caller closes the backing subscription, and events
still unanswered go back to their group.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import dapr.proto.runtime.v1 as api

from events.bus.contract import EventBus, Message, Subscription
from tests.dapr_sidecar.envelope import UndeliverableEvent, topic_event_request

_STATUS = api.TopicEventResponse.TopicEventResponseStatus
#: How long an event Dapr cannot deliver waits before it is tried again.
UNDELIVERABLE_RETRY_DELAY = 1.0


class StreamSession:
    def __init__(
        self,
        bus: EventBus,
        subscription: Subscription,
        context,
        pubsub_name: str,
        dead_letter_topic: str | None,
        max_in_flight: int,
    ) -> None:
        self._bus = bus
        self._subscription = subscription
        self._context = context
        self._pubsub_name = pubsub_name
        self._dead_letter_topic = dead_letter_topic
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: dict[str, deque[Message]] = {}

    async def pump(self) -> None:
        """Write events to the app until the backing subscription ends."""
        while True:
            await self._slots.acquire()
            try:
                message = await anext(self._subscription)
            except StopAsyncIteration:
                return
            try:
                request = topic_event_request(message.event, message.topic, self._pubsub_name)
            except UndeliverableEvent:
                self._slots.release()
                await message.nack(delay=UNDELIVERABLE_RETRY_DELAY)
                continue
            self._in_flight.setdefault(request.id, deque()).append(message)
            await self._context.write(api.SubscribeTopicEventsResponseAlpha1(event_message=request))

    async def read_answers(self, requests: AsyncIterator) -> str | None:
        """Settle events as answers arrive; returns a protocol problem, or None at the end."""
        async for request in requests:
            if not request.HasField("event_processed"):
                return "duplicate initial request received"
            await self._settle(request.event_processed)
        return None

    async def _settle(self, processed: api.SubscribeTopicEventsRequestProcessedAlpha1) -> None:
        waiting = self._in_flight.get(processed.id)
        if not waiting:
            return  # Dapr logs "no client stream expecting publish response" and goes on
        message = waiting.popleft()
        if not waiting:
            del self._in_flight[processed.id]
        self._slots.release()
        status = processed.status.status
        if status == _STATUS.SUCCESS:
            await message.ack()
        elif status == _STATUS.DROP:
            if self._dead_letter_topic:
                await self._bus.publish(self._dead_letter_topic, message.event, key=message.key)
            await message.ack()
        else:
            await message.nack()
