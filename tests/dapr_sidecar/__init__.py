"""A TEST DOUBLE of a Dapr sidecar: not Dapr.

It serves the subset of the Dapr gRPC API that fnevents uses: PublishEvent,
BulkPublishEventAlpha1, SubscribeTopicEventsAlpha1, and GetMetadata. It is built
on the official protos in ``dapr.proto.runtime.v1`` (``DaprServicer``,
``add_DaprServicer_to_server``), and backed by a real fnevents bus backend: the
in-memory bus by default, or any other through a factory (RedisBus, say).
Next to it, a tiny aiohttp server answers ``GET /v1.0/healthz`` and
``/v1.0/healthz/outbound`` with 204, which the official Dapr SDK probes before it
connects.

Its behaviour follows Dapr's code (dapr/dapr and components-contrib), as far as
fnevents can observe it:

- Envelopes are kept or wrapped, and events are turned into ``TopicEventRequest``
  with Dapr's data rules (see :mod:`tests.dapr_sidecar.envelope`).
- The answers SUCCESS, RETRY and DROP ack, nack, and (with a dead-letter topic)
  dead-letter the event.
- The ``dapr-api-token`` metadata is checked when a token is configured.

Where it differs from Dapr, it says so in its own docstrings. The main
difference: it honours the subscription's ``consumerID`` metadata as the consumer
group, which real components mostly do not.

The server runs in a thread with its own event loop (:func:`running`), on free
loopback ports. That way a test's event loop (and the SDK's blocking health
probe) never starves it.
"""

from tests.dapr_sidecar.server import RunningSidecar, running

__all__ = ["RunningSidecar", "running"]
