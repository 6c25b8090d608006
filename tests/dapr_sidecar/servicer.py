"""Test double (not Dapr): the Dapr gRPC service, backed by real fnevents buses.

Only the calls fnevents makes are served; every other Dapr call answers
UNIMPLEMENTED (the ``DaprServicer`` default). Status codes follow Dapr:

- an unknown pub/sub is INVALID_ARGUMENT;
- a broker that refuses a publish is INTERNAL;
- a missing or wrong API token is UNAUTHENTICATED.

``broken_topics`` lets a test make the "broker" refuse publishes to a topic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import dapr.proto.runtime.v1 as api
import grpc
from dapr.proto.runtime.v1.dapr_pb2_grpc import DaprServicer
from google.protobuf import empty_pb2

from events.bus.contract import EventBus
from events.cloudevent import CloudEvent
from events.errors import BusError, InvalidCloudEvent
from tests.dapr_sidecar.envelope import stored_event
from tests.dapr_sidecar.stream import StreamSession

DEFAULT_IN_FLIGHT = 10  # per stream, like pubsub.redis's default concurrency


class DaprDouble(DaprServicer):
    def __init__(
        self,
        components: Mapping[str, EventBus],
        app_id: str,
        api_token: str | None = None,
        max_in_flight: int = DEFAULT_IN_FLIGHT,
    ) -> None:
        self.components = dict(components)
        self.app_id = app_id
        self.api_token = api_token
        self.max_in_flight = max_in_flight
        self.broken_topics: set[str] = set()
        #: The dapr-api-token values seen, in order (None: the call had none).
        self.tokens_seen: list[str | None] = []

    async def GetMetadata(self, request, context):
        await self._authorize(context)
        return api.GetMetadataResponse(
            id=self.app_id,
            runtime_version="fnevents-test-double",
            registered_components=[
                api.RegisteredComponents(name=name, type=bus.component_type, version="v1")
                for name, bus in self.components.items()
            ],
        )

    async def PublishEvent(self, request, context):
        await self._authorize(context)
        bus = await self._component(request.pubsub_name, context)
        if request.metadata.get("rawPayload", "").lower() == "true":
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "test double: no rawPayload")
        try:
            event = stored_event(request.data, request.data_content_type, self.app_id)
        except InvalidCloudEvent as exc:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"error when unmarshalling the cloud event: {exc}"
            )
        try:
            await self._publish(bus, request.topic, event, request.metadata.get("partitionKey"))
        except BusError as exc:
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"error when publish to topic {request.topic} in pubsub "
                f"{request.pubsub_name}: {exc}",
            )
        return empty_pb2.Empty()

    async def BulkPublishEventAlpha1(self, request, context):
        """Per-entry failures come back as ``failedEntries``, as the proto describes."""
        await self._authorize(context)
        bus = await self._component(request.pubsub_name, context)
        failed = []
        for entry in request.entries:
            key = entry.metadata.get("partitionKey") or request.metadata.get("partitionKey")
            try:
                event = stored_event(entry.event, entry.content_type, self.app_id)
                await self._publish(bus, request.topic, event, key)
            except (InvalidCloudEvent, BusError) as exc:
                failed.append(
                    api.BulkPublishResponseFailedEntry(entry_id=entry.entry_id, error=str(exc))
                )
        return api.BulkPublishResponse(failedEntries=failed)

    async def SubscribeTopicEventsAlpha1(self, request_iterator, context):
        await self._authorize(context)
        requests = request_iterator.__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            return
        if not first.HasField("initial_request"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "initial request is required")
        initial = first.initial_request
        bus = await self._component(initial.pubsub_name, context)
        group = initial.metadata.get("consumerID") or self.app_id
        dead_letter = initial.dead_letter_topic if initial.HasField("dead_letter_topic") else None
        subscription = await bus.subscribe(initial.topic, group)
        session = StreamSession(
            bus, subscription, context, initial.pubsub_name, dead_letter, self.max_in_flight
        )
        tasks: list[asyncio.Task] = []
        try:
            await context.write(
                api.SubscribeTopicEventsResponseAlpha1(
                    initial_response=api.SubscribeTopicEventsResponseInitialAlpha1()
                )
            )
            answers = asyncio.create_task(session.read_answers(requests))
            pump = asyncio.create_task(session.pump())
            tasks = [answers, pump]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            problem = answers.result() if answers in done else None
            failure = pump.exception() if pump in done else None
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await subscription.close(drain_timeout=0)  # unanswered events go back
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        if failure is not None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the component failed: {failure}")

    async def _publish(self, bus: EventBus, topic: str, event: CloudEvent, key: str | None):
        if topic in self.broken_topics:
            raise BusError(f"test double: the broker refuses topic {topic!r}")
        await bus.publish(topic, event, key=key or None)

    async def _component(self, name: str, context) -> EventBus:
        bus = self.components.get(name)
        if bus is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pubsub {name} is not found")
        return bus

    async def _authorize(self, context) -> None:
        sent = next(
            (value for key, value in context.invocation_metadata() if key == "dapr-api-token"),
            None,
        )
        self.tokens_seen.append(sent)
        if self.api_token is None:
            return
        if sent is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "authentication error: missing api token"
            )
        if sent != self.api_token:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "authentication error: api token mismatch"
            )
