"""The Dapr sidecar backend, beyond the conformance suite: finding the sidecar, tokens,
bulk publish, and CloudEvents kept whole through the sidecar's gRPC API.

Every test runs against the Dapr sidecar TEST DOUBLE in tests/dapr_sidecar (not Dapr).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from events.app.plans import BusPlan
from events.brokers.dapr.bus import BulkPublishError, DaprSidecarBus
from events.brokers.dapr.client import CONFIG_VARIABLES
from events.brokers.dapr.settings import DaprSettings
from events.brokers.registry import bus_settings, create_bus
from events.bus.envelope import UNDECODABLE_TYPE
from events.cloudevent import CloudEvent
from events.errors import BusError, ManifestError
from tests.brokers.servers import free_port
from tests.dapr_sidecar import RunningSidecar, running
from tests.helpers import receive, receive_all, received

pytestmark = pytest.mark.dapr

RECEIVE_TIMEOUT = 5.0
TOKEN = "s3cret-token"
DAPR_VARIABLES = (*CONFIG_VARIABLES, "DAPR_API_TOKEN", "DAPR_API_TIMEOUT_SECONDS")


def sidecar_bus(sidecar: RunningSidecar, **settings: object) -> DaprSidecarBus:
    values = {"pubsubName": sidecar.pubsub_name, "grpcEndpoint": sidecar.grpc_address}
    return DaprSidecarBus(DaprSettings.model_validate({**values, **settings}))


async def round_trip(bus: DaprSidecarBus, event: CloudEvent) -> CloudEvent:
    """Publish ``event`` through the sidecar and return what a subscriber receives."""
    topic = f"dapr-{uuid.uuid4().hex[:12]}"
    async with await bus.subscribe(topic, "g") as subscription:
        await bus.publish(topic, event)
        return await received(subscription, RECEIVE_TIMEOUT)


@pytest.fixture
def no_dapr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DAPR_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def bus(dapr_sidecar: RunningSidecar) -> AsyncIterator[DaprSidecarBus]:
    async with sidecar_bus(dapr_sidecar) as started:
        yield started


@pytest.fixture(scope="module")
def token_sidecar() -> Iterator[RunningSidecar]:
    with running(api_token=TOKEN) as sidecar:
        yield sidecar


# --- finding the sidecar ---------------------------------------------------------------


async def test_without_dapr_configured_start_fails_at_once_and_builds_no_client(
    no_dapr_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dapr.aio.clients
    import dapr.clients

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("a DaprClient was constructed without Dapr configured")

    monkeypatch.setattr(dapr.aio.clients.DaprClient, "__init__", no_client)
    monkeypatch.setattr(dapr.clients.DaprClient, "__init__", no_client)
    bus = DaprSidecarBus(DaprSettings(pubsubName="pubsub"))
    started = time.monotonic()
    with pytest.raises(BusError) as caught:
        await bus.start()
    assert time.monotonic() - started < 1.0
    assert not caught.value.retriable
    assert "DAPR_GRPC_ENDPOINT" in str(caught.value)
    assert "Dapr is not configured" in str(caught.value)
    await bus.close()


@pytest.fixture(params=["refused", "silent"])
def unreachable_address(request: pytest.FixtureRequest) -> Iterator[str]:
    """Nothing listening, or a listener that accepts connections and never answers."""
    if request.param == "refused":
        yield f"127.0.0.1:{free_port()}"
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_an_unreachable_sidecar_is_reported_fast_and_retriable(
    no_dapr_env: None, unreachable_address: str
) -> None:
    bus = DaprSidecarBus(
        DaprSettings(pubsubName="pubsub", grpcEndpoint=unreachable_address, connectTimeout=1.0)
    )
    started = time.monotonic()
    with pytest.raises(BusError) as caught:
        await bus.start()
    assert time.monotonic() - started < 5.0
    assert caught.value.retriable
    assert unreachable_address in str(caught.value)
    await bus.close()


@pytest.mark.parametrize("style", ["endpoint", "host-and-port"])
async def test_the_standard_environment_variables_locate_the_sidecar(
    no_dapr_env: None, monkeypatch: pytest.MonkeyPatch, dapr_sidecar: RunningSidecar, style: str
) -> None:
    if style == "endpoint":
        monkeypatch.setenv("DAPR_GRPC_ENDPOINT", dapr_sidecar.grpc_address)
    else:
        monkeypatch.setenv("DAPR_RUNTIME_HOST", "127.0.0.1")
        monkeypatch.setenv("DAPR_GRPC_PORT", str(dapr_sidecar.grpc_port))
    async with DaprSidecarBus(DaprSettings(pubsubName=dapr_sidecar.pubsub_name)) as bus:
        assert dapr_sidecar.grpc_address in bus.describe()
        event = CloudEvent.create("test.env", "/tests/dapr", {"style": style})
        assert await round_trip(bus, event) == event


async def test_a_pubsub_the_sidecar_lacks_is_named(dapr_sidecar: RunningSidecar) -> None:
    bus = sidecar_bus(dapr_sidecar, pubsubName="no-such-pubsub")
    with pytest.raises(BusError) as caught:
        await bus.start()
    assert caught.value.retriable  # the sidecar may still be loading its components
    assert "'no-such-pubsub'" in str(caught.value)
    assert f"it has: {dapr_sidecar.pubsub_name}" in str(caught.value)
    await bus.close()


async def test_losing_the_sidecar_is_reported_as_retriable() -> None:
    with running() as sidecar:
        bus = sidecar_bus(sidecar)
        await bus.start()
        subscription = await bus.subscribe("dapr-lost", "g")
    with pytest.raises(BusError) as reading:
        await receive(subscription, RECEIVE_TIMEOUT)
    assert reading.value.retriable
    with pytest.raises(BusError) as publishing:
        await bus.publish("dapr-lost", CloudEvent.create("test.lost", "/tests/dapr"))
    assert publishing.value.retriable
    assert sidecar.grpc_address in str(publishing.value)
    await bus.close()


def test_an_eventbus_with_sidecar_true_plans_this_backend() -> None:
    plan = BusPlan(key="dapr:orders", backend="dapr", via="EventBus default", metadata={})
    with pytest.raises(ManifestError, match="pubsubName"):
        bus_settings(plan)
    plan = BusPlan(
        key="dapr:orders", backend="dapr", via="EventBus default", metadata={"pubsubName": "o"}
    )
    assert isinstance(create_bus(plan), DaprSidecarBus)


# --- the API token ---------------------------------------------------------------------


@pytest.mark.parametrize("given_by", ["metadata", "environment"])
async def test_the_api_token_is_sent(
    no_dapr_env: None,
    monkeypatch: pytest.MonkeyPatch,
    token_sidecar: RunningSidecar,
    given_by: str,
) -> None:
    if given_by == "environment":
        monkeypatch.setenv("DAPR_API_TOKEN", TOKEN)
        bus = sidecar_bus(token_sidecar)
    else:
        bus = sidecar_bus(token_sidecar, apiToken=TOKEN)
    async with bus:
        event = CloudEvent.create("test.token", "/tests/dapr", {"by": given_by})
        assert await round_trip(bus, event) == event
    assert token_sidecar.servicer.tokens_seen[-1] == TOKEN


@pytest.mark.parametrize("token", ["wrong-token", None])
async def test_a_wrong_or_missing_token_is_rejected_for_good(
    no_dapr_env: None, token_sidecar: RunningSidecar, token: str | None
) -> None:
    bus = sidecar_bus(token_sidecar, apiToken=token)
    with pytest.raises(BusError) as caught:
        await bus.start()
    assert not caught.value.retriable
    assert "rejected the API token" in str(caught.value)
    await bus.close()


# --- bulk publish ----------------------------------------------------------------------


async def test_publish_batch_delivers_every_event(bus: DaprSidecarBus) -> None:
    topic = f"dapr-bulk-{uuid.uuid4().hex[:12]}"
    events = [
        CloudEvent.create("test.bulk", "/tests/dapr", {"n": n}, partitionkey=f"k{n % 4}")
        for n in range(50)
    ]
    async with await bus.subscribe(topic, "g") as subscription:
        await bus.publish_batch(topic, events)
        got = await receive_all(subscription, len(events), timeout=RECEIVE_TIMEOUT)
    assert sorted(m.event.data["n"] for m in got) == list(range(50))
    assert {m.event.id: m.event for m in got} == {e.id: e for e in events}
    assert all(m.key == m.event.extensions["partitionkey"] for m in got)


async def test_events_the_broker_refuses_are_reported_for_sending_again(
    bus: DaprSidecarBus, dapr_sidecar: RunningSidecar
) -> None:
    topic = f"dapr-refused-{uuid.uuid4().hex[:12]}"
    events = [CloudEvent.create("test.refused", "/tests/dapr", {"n": n}) for n in range(3)]
    dapr_sidecar.servicer.broken_topics.add(topic)
    try:
        with pytest.raises(BulkPublishError) as batch:
            await bus.publish_batch(topic, events)
        with pytest.raises(BusError) as single:
            await bus.publish(topic, events[0])
    finally:
        dapr_sidecar.servicer.broken_topics.discard(topic)
    assert batch.value.retriable and batch.value.failed_events == events
    assert single.value.retriable and "refuses" in str(single.value)


# --- CloudEvents kept whole ------------------------------------------------------------

FULL = CloudEvent(
    id="ev-full",
    source="/tests/dapr",
    type="test.attributes",
    subject="vehicle-7",
    time="2024-05-06T07:08:09.123456Z",
    dataschema="https://example.com/schemas/vehicle.json",
    datacontenttype="application/json",
    extensions={
        "partitionkey": "vehicle-7",
        "sequence": 42,
        "negative": -7,
        "urgent": True,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    },
    data={"speed": 88.5, "tags": ["a", "b"], "nested": {"none": None, "n": 3}},
)
EVENTS = {
    "all attributes": FULL,
    "binary": FULL.evolve(datacontenttype="application/octet-stream", data=bytes(range(256))),
    "text": FULL.evolve(datacontenttype="text/plain; charset=utf-8", data="héllo ✓"),
    "xml": FULL.evolve(datacontenttype="application/xml", data="<a>1</a>"),
    "json string": FULL.evolve(data="just a string"),
    "json, no content type": CloudEvent(id="ev-bare", source="/s", type="t", data={"n": 1}),
    "+json suffix": FULL.evolve(datacontenttype="application/vnd.example+json", data={"a": 1}),
    "text/json object": FULL.evolve(datacontenttype="text/json", data={"a": [1, 2]}),
    "text/json string": FULL.evolve(datacontenttype="text/json", data="quoted"),
    "no data": CloudEvent(id="ev-empty", source="/s", type="t", subject="only-attributes"),
}


@pytest.mark.parametrize("event", EVENTS.values(), ids=EVENTS.keys())
async def test_an_event_arrives_with_its_attributes_and_data_intact(
    bus: DaprSidecarBus, event: CloudEvent
) -> None:
    received = await round_trip(bus, event)
    assert received == event
    assert received.extensions == event.extensions
    assert type(received.data) is type(event.data)


async def test_an_event_that_cannot_be_decoded_is_handed_out_for_the_dead_letter(
    bus: DaprSidecarBus,
) -> None:
    broken = CloudEvent(
        id="ev-broken", source="/s", type="t", datacontenttype="application/json", data=b"{nope"
    )
    received = await round_trip(bus, broken)
    assert received.type == UNDECODABLE_TYPE
    assert received.id == "ev-broken"
    assert "not valid JSON" in str(received.extensions["fnerrorreason"])


# --- interoperating with the official Dapr SDK -----------------------------------------


async def test_apps_on_the_dapr_sdk_and_fnevents_exchange_events(
    no_dapr_env: None,
    monkeypatch: pytest.MonkeyPatch,
    dapr_sidecar: RunningSidecar,
    bus: DaprSidecarBus,
) -> None:
    from dapr.aio.clients import DaprClient

    for name, value in dapr_sidecar.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "5")
    to_fnevents, to_sdk = (f"dapr-sdk-{uuid.uuid4().hex[:12]}" for _ in range(2))
    ours = CloudEvent.create("test.from.fnevents", "/tests/dapr", {"n": 1}, sequence=3)
    async with DaprClient() as client:
        # a Dapr app publishes a plain JSON payload: the sidecar wraps it in its envelope
        async with await bus.subscribe(to_fnevents, "g") as subscription:
            await client.publish_event(
                dapr_sidecar.pubsub_name,
                to_fnevents,
                b'{"order": 7}',
                data_content_type="application/json",
            )
            message = await receive(subscription, RECEIVE_TIMEOUT)
            await message.ack()
        assert message.event.type == "com.dapr.event.sent"
        assert message.event.source == dapr_sidecar.app_id
        assert message.event.data == {"order": 7}
        # and receives what fnevents publishes, as a CloudEvent
        sdk_subscription = await client.subscribe(dapr_sidecar.pubsub_name, to_sdk)
        try:
            await bus.publish(to_sdk, ours)
            delivered = await asyncio.wait_for(sdk_subscription.next_message(), RECEIVE_TIMEOUT)
            await sdk_subscription.respond_success(delivered)
        finally:
            await sdk_subscription.close()
    assert (delivered.id(), delivered.type(), delivered.source()) == (
        ours.id,
        ours.type,
        ours.source,
    )
    assert delivered.data() == {"n": 1}
    assert delivered.extensions()["sequence"] == 3
