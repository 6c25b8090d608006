"""``dapr``: the event bus through a Dapr sidecar's pub/sub component.

An EventBus with ``component: NAME`` and ``sidecar: true`` uses this backend:
fnevents talks to the sidecar's gRPC API, and the sidecar talks to the broker, so
the Component lives in the sidecar's configuration rather than among our manifests.

Finding the sidecar (address, token, deadlines) works as in the Dapr SDKs; the
:class:`~events.brokers.dapr.client.DaprSidecarClient` in :mod:`events.brokers.dapr.client`
does it and holds the channel. ``start`` never guesses:

- If nothing says where the sidecar is, Dapr is not configured, and it fails at
  once (not retriable), naming the variables to set.
- Otherwise it makes one ``GetMetadata`` call, bounded by ``connectTimeout``.
  An unreachable sidecar, or one without the pub/sub component yet, gives
  ``BusError(retriable=True)`` naming the address. A rejected token is not
  retriable.

Why not the SDK's ``DaprClient`` (``dapr.aio.clients``, 1.19):

- Its constructor runs the *blocking* health loop from ``dapr.clients.health``
  on the event loop, for up to ``DAPR_HEALTH_TIMEOUT`` (60 s). That loop probes
  HTTP ``/v1.0/healthz/outbound`` on ``DAPR_HTTP_PORT``, a port we otherwise don't
  need.
- Its streaming ``Subscription`` sends answers fire-and-forget and cancels the
  stream on ``close()``, so an ack that was just made can be lost.
- It reconnects on its own, and reconnecting belongs to the core.

So this backend uses the SDK's generated stubs (``dapr.proto``) and its endpoint
parser (``dapr.conf.helpers.GrpcEndpoint``) on a ``grpc.aio`` channel of its own.

Publishing keeps our CloudEvent whole (see :mod:`events.brokers.dapr.codec`), and a
key travels as ``partitionKey`` metadata. :meth:`DaprSidecarBus.publish_batch`
is the optional bulk publish.

Groups: the group is sent as the subscription's ``consumerID`` metadata. The test
sidecar honours it. In real Dapr, though, the consumer group is the component's
``consumerID`` (the app id by default):

- ``pubsub.redis`` makes its group from the component metadata and ignores the
  subscription's;
- per-subscription overrides are not generally honoured (dapr/dotnet-sdk#1360,
  dapr/components-contrib#3881).

With a real sidecar, run one group per Dapr app, scale a group with replicas of
that app, and don't put two groups on one topic behind one sidecar.
Members of a group are described in :mod:`events.brokers.dapr.member`, their messages in
:mod:`events.brokers.dapr.message`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import dapr.proto.runtime.v1 as api
import grpc
from dapr.proto.runtime.v1.dapr_pb2_grpc import DaprStub

from events.brokers.dapr.client import DaprSidecarClient
from events.brokers.dapr.codec import CLOUDEVENT_CONTENT_TYPE, publish_payload, trace_metadata
from events.brokers.dapr.member import DaprMember, DeliveryCounter
from events.brokers.dapr.settings import DaprSettings
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed, BusError

_C = grpc.StatusCode


class BulkPublishError(BusError):
    """Some events of a batch were not published; ``failed_events`` can be sent again."""

    def __init__(self, message: str, failed_events: list[CloudEvent]) -> None:
        super().__init__(message, retriable=True)
        self.failed_events = failed_events


class DaprSidecarBus(EventBus):
    """The bus through a Dapr sidecar. See the module docstring."""

    component_type: ClassVar[str] = "dapr"

    def __init__(self, settings: DaprSettings, pubsub_name: str = "eventbus") -> None:
        self._settings = settings
        self._pubsub = settings.pubsubName
        self._client = DaprSidecarClient(settings)
        self._bulk_method: str | None = None
        self._counter = DeliveryCounter()
        self._subscriptions: list[DaprMember] = []
        self._closed = False

    async def start(self) -> None:
        if self._closed:
            raise BusClosed("the Dapr sidecar bus is closed; cannot start it again")
        await self._client.connect()

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        stub = self._ready("publish")
        request = api.PublishEventRequest(
            pubsub_name=self._pubsub,
            topic=topic,
            data=publish_payload(event),
            data_content_type=CLOUDEVENT_CONTENT_TYPE,
            metadata=_key_metadata(key),
        )
        client = self._client
        try:
            await stub.PublishEvent(
                request,
                metadata=client.call_metadata + trace_metadata(event),
                timeout=client.request_timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise client.rpc_error(exc, f"publish to {topic!r}") from None

    async def publish_batch(self, topic: str, events: Sequence[CloudEvent]) -> None:
        """Optional capability: publish ``events`` with one bulk publish call.

        Each event's ``partitionkey`` extension, if any, is its partition key.
        Returns once the sidecar holds them all. Failed entries raise
        :class:`BulkPublishError` with the events to send again. Real Dapr fails
        the whole call instead when some entries fail, which raises a retriable
        BusError: send the whole batch again (duplicates are allowed).
        """
        stub = self._ready("publish")
        if not events:
            return
        request = api.BulkPublishRequest(
            pubsub_name=self._pubsub,
            topic=topic,
            entries=[
                api.BulkPublishRequestEntry(
                    entry_id=str(index),
                    event=publish_payload(event),
                    content_type=CLOUDEVENT_CONTENT_TYPE,
                    metadata=_key_metadata(event.extensions.get("partitionkey")),
                )
                for index, event in enumerate(events)
            ],
        )
        response = await self._bulk_publish(stub, request)
        if response.failedEntries:
            failed = [events[int(entry.entry_id)] for entry in response.failedEntries]
            first = response.failedEntries[0]
            raise BulkPublishError(
                f"the Dapr sidecar at {self._client.address} did not publish {len(failed)} of "
                f"{len(events)} events to {topic!r} (event {failed[0].id}: {first.error})",
                failed,
            )

    async def _bulk_publish(self, stub: DaprStub, request: api.BulkPublishRequest):
        # the stable method first, as the SDK does; older sidecars only have Alpha1
        methods = [self._bulk_method or "BulkPublishEvent", "BulkPublishEventAlpha1"]
        client = self._client
        for name in dict.fromkeys(methods):
            try:
                response = await getattr(stub, name)(
                    request, metadata=client.call_metadata, timeout=client.request_timeout
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == _C.UNIMPLEMENTED and name != "BulkPublishEventAlpha1":
                    continue
                raise client.rpc_error(exc, f"bulk publish to {request.topic!r}") from None
            self._bulk_method = name
            return response
        raise AssertionError("unreachable: the last method either returns or raises")

    async def subscribe(self, topic: str, group: str) -> Subscription:
        self._ready("subscribe")
        member = DaprMember(self._client, topic, group, self._counter)
        await member.open(self._settings.connectTimeout)
        self._subscriptions = [s for s in self._subscriptions if not s.closed]
        self._subscriptions.append(member)
        return member

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))
        await self._client.close()

    def describe(self) -> str:
        where = self._client.address or "an address not yet resolved"
        return f"Dapr sidecar pub/sub '{self._pubsub}' at {where}"

    def _ready(self, doing: str) -> DaprStub:
        if self._closed:
            raise BusClosed(f"the Dapr sidecar bus is closed; cannot {doing}")
        stub = self._client.stub
        if stub is None:
            raise BusError(f"the Dapr sidecar bus is not started; cannot {doing}")
        return stub


def _key_metadata(key: object) -> dict[str, str]:
    return {"partitionKey": key} if isinstance(key, str) and key else {}
