"""What the JetStream backend adds to the contract: Dapr's wire format, server-side
de-duplication, payloads from other producers, settings, and outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from events.app.load import load_catalog
from events.app.plans import BusPlan, plan_bus
from events.brokers.jetstream import client as jetstream_link
from events.brokers.jetstream.bus import JetStreamBus
from events.brokers.jetstream.settings import JetStreamSettings
from events.brokers.jetstream.streams import safe_name
from events.brokers.registry import bus_settings
from events.bus.envelope import RAW_TYPE, UNDECODABLE_TYPE
from events.bus.resilient import ResilientSubscription, publish_until_accepted
from events.cloudevent import CloudEvent
from events.errors import BusError, ManifestError
from tests.brokers import servers
from tests.helpers import nothing_within, receive

pytestmark = pytest.mark.jetstream

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openfunction"
TIMEOUT = 5.0


def url_of(broker: Any) -> str:
    return f"nats://{broker.address}"


def make_bus(broker: Any, **metadata: str) -> JetStreamBus:
    settings = JetStreamSettings.model_validate({"natsURL": url_of(broker), **metadata})
    return JetStreamBus(settings, pubsub_name="jetstream-tests")


@pytest.fixture
async def bus(nats_broker) -> AsyncIterator[JetStreamBus]:
    async with make_bus(nats_broker, ackWait="1s") as started:
        yield started


@pytest.fixture
async def raw(nats_broker) -> AsyncIterator[Any]:
    """A plain nats-py connection, as another producer or consumer would have."""
    nc = await nats.connect(url_of(nats_broker))
    yield nc
    await nc.close()


@pytest.fixture
def topic() -> str:
    return f"js-{uuid.uuid4().hex[:12]}"


# -- Dapr interop -----------------------------------------------------------------


async def test_an_event_a_dapr_app_published_arrives_as_that_event(bus, raw, topic) -> None:
    sub = await bus.subscribe(topic, "g")
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    dapr_envelope = {  # what daprd writes for `dapr publish --data '{"orderId": 7}'`
        "id": "5929aaac-a5e2-4ca1-859c-edfe73f11565",
        "source": "checkout",
        "type": "com.dapr.event.sent",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": {"orderId": 7},
        "topic": topic,
        "pubsubname": "orderpubsub",
        "traceid": trace,
        "traceparent": trace,
        "tracestate": "",
        "time": "2024-05-01T12:30:45Z",
    }
    await raw.jetstream().publish(topic, orjson.dumps(dapr_envelope))
    message = await receive(sub, TIMEOUT)
    event = message.event
    assert (event.id, event.source, event.type) == (
        dapr_envelope["id"],
        "checkout",
        "com.dapr.event.sent",
    )
    assert event.data == {"orderId": 7}
    assert event.time == "2024-05-01T12:30:45Z"
    assert event.extensions == {"traceparent": trace, "tracestate": ""}
    assert (message.topic, message.attempt) == (topic, 1)
    await message.ack()
    await sub.close()


async def test_what_we_publish_is_a_dapr_envelope_with_the_event_id_as_msg_id(
    bus, raw, topic
) -> None:
    event = CloudEvent.create("order.placed", "/shop", {"orderId": 7}, subject="order-7")
    await bus.publish(topic, event)
    js = raw.jetstream()
    reader = await js.pull_subscribe(topic, stream=safe_name(topic))
    [msg] = await reader.fetch(1, timeout=TIMEOUT)
    document = orjson.loads(msg.data)
    assert msg.headers["Nats-Msg-Id"] == event.id
    assert document["topic"] == topic
    assert document["pubsubname"] == "jetstream-tests"
    assert {k: document[k] for k in ("id", "source", "type", "specversion", "subject")} == {
        "id": event.id,
        "source": "/shop",
        "type": "order.placed",
        "specversion": "1.0",
        "subject": "order-7",
    }
    assert document["data"] == {"orderId": 7}
    await reader.unsubscribe()


async def test_an_operators_stream_is_used_as_it_is(bus, raw, topic) -> None:
    js = raw.jetstream()
    await js.add_stream(name=f"OPS_{topic.replace('-', '_')}", subjects=[f"{topic}.>"])
    sub = await bus.subscribe(f"{topic}.created", "g")
    await bus.publish(f"{topic}.created", CloudEvent.create("t", "/s", {"n": 1}))
    message = await receive(sub, TIMEOUT)
    assert message.event.data == {"n": 1}
    await message.ack()
    names = await js.streams_info()
    assert safe_name(f"{topic}.created") not in {s.config.name for s in names}
    await sub.close()


async def test_stream_name_puts_every_topic_in_one_stream(nats_broker, raw, topic) -> None:
    shared = f"shared_{topic.replace('-', '_')}"
    async with make_bus(nats_broker, streamName=shared) as bus:
        subs = [await bus.subscribe(f"{topic}-{n}", "g") for n in range(2)]
        for n, sub in enumerate(subs):
            await bus.publish(f"{topic}-{n}", CloudEvent.create("t", "/s", {"n": n}))
            message = await receive(sub, TIMEOUT)
            assert message.event.data == {"n": n}
            await message.ack()
    js = raw.jetstream()
    info = await js.stream_info(shared)
    assert sorted(info.config.subjects) == [f"{topic}-0", f"{topic}-1"]
    consumers = {c.name: c.config.filter_subject for c in await js.consumers_info(shared)}
    assert consumers == {f"g-{topic}-0": f"{topic}-0", f"g-{topic}-1": f"{topic}-1"}


# -- de-duplication and other producers -------------------------------------------


async def test_the_same_event_published_twice_is_delivered_once(bus, raw, topic) -> None:
    sub = await bus.subscribe(topic, "g")
    event = CloudEvent.create("t", "/s", {"n": 1})
    await bus.publish(topic, event)
    await bus.publish(topic, event)  # a retry after a lost PubAck, say
    message = await receive(sub, TIMEOUT)
    await message.ack()
    assert message.event == event
    assert await nothing_within(sub, 0.5)
    info = await raw.jetstream().stream_info(safe_name(topic))
    assert info.state.messages == 1
    await sub.close()


async def test_payloads_that_are_not_cloudevents_are_wrapped_or_set_aside(bus, raw, topic) -> None:
    sub = await bus.subscribe(topic, "g")
    js = raw.jetstream()
    await js.publish(topic, b"plain \xff bytes")
    await js.publish(topic, b'{"reading": 21.5}')
    await js.publish(topic, b'{"specversion": "1.0", "id": "no-source-or-type"}')
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": "after"}, id="good"))

    plain, json_payload, broken, good = [await receive(sub, TIMEOUT) for _ in range(4)]
    assert (plain.event.type, plain.event.data) == (RAW_TYPE, b"plain \xff bytes")
    assert plain.event.id == f"{topic}/1", "the id is the stream position"
    assert json_payload.event.data == {"reading": 21.5}
    assert json_payload.event.datacontenttype == "application/json"
    assert broken.event.type == UNDECODABLE_TYPE
    assert "undecodable message" in broken.event.extensions["fnerrorreason"]
    assert good.event.id == "good", "later messages still arrive"
    for message in (json_payload, broken, good):
        await message.ack()
    await plain.nack()
    again = await receive(sub, TIMEOUT)
    assert (again.event.id, again.attempt) == (f"{topic}/1", 2), "the id survives redelivery"
    await again.ack()
    await sub.close()


# -- groups -----------------------------------------------------------------------


async def test_a_member_whose_connection_dies_gives_its_event_back(nats_broker, topic) -> None:
    async with make_bus(nats_broker, ackWait="1s") as survivor:
        doomed = make_bus(nats_broker, ackWait="1s")
        taker = await doomed.subscribe(topic, "g")
        await survivor.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="held"))
        assert (await receive(taker, TIMEOUT)).event.id == "held"
        await doomed._link.nc.close()  # a crash: no close(), no nak, no ack
        other = await survivor.subscribe(topic, "g")
        started = time.monotonic()
        again = await receive(other, TIMEOUT)
        assert (again.event.id, again.attempt) == ("held", 2)
        assert time.monotonic() - started < 3, "back after ackWait (1s)"
        await again.ack()
        with pytest.raises(BusError) as lost:
            await receive(taker, TIMEOUT)
        assert lost.value.retriable
        await other.close()
        await taker.close(drain_timeout=0)
        await doomed.close()


async def test_closing_hands_buffered_events_back_at_once(nats_broker, topic) -> None:
    async with make_bus(nats_broker, ackWait="30s") as bus:
        first = await bus.subscribe(topic, "g")
        for n in range(10):
            await bus.publish(topic, CloudEvent.create("t", "/s", {"n": n}, id=f"e{n}"))
        taken = await receive(first, TIMEOUT)
        await taken.ack()
        await first.close(drain_timeout=0)  # nine more were already pulled into its buffer
        second = await bus.subscribe(topic, "g")
        rest = [await receive(second, TIMEOUT) for _ in range(9)]
        assert {m.event.id for m in rest} == {f"e{n}" for n in range(10)} - {taken.event.id}
        for message in rest:
            await message.ack()
        await second.close()


async def test_durable_name_prefixes_the_groups_consumer(nats_broker, raw, topic) -> None:
    async with make_bus(nats_broker, durableName="ImDurable") as bus:
        sub = await bus.subscribe(topic, "trigger-a")
        await sub.close()
    info = await raw.jetstream().consumer_info(safe_name(topic), "ImDurable-trigger-a")
    assert info.config.filter_subject == topic
    assert info.config.ack_policy == "explicit"


# -- settings and errors ----------------------------------------------------------


def plan(**metadata: str) -> BusPlan:
    return BusPlan(key="k", backend="pubsub.jetstream", via="EventBus test", metadata=metadata)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"natsURL": "nats://x", "servers": "x"}, "unknown metadata 'servers'"),
        ({}, "metadata 'natsURL' is required"),
        ({"natsURL": "nats://x", "jwt": "eyJ0"}, "metadata 'seedKey': 'seedKey' is required"),
        ({"natsURL": "nats://x", "tls_client_cert": "c.pem"}, "metadata 'tls_client_key'"),
        ({"natsURL": "nats://x", "ackPolicy": "none"}, "ackPolicy 'none' is not supported"),
        ({"natsURL": "nats://x", "deliverPolicy": "sequence"}, "needs 'startSequence'"),
        ({"natsURL": "nats://x", "rateLimit": "1024"}, "metadata 'rateLimit'"),
        ({"natsURL": "nats://x", "backOff": "1s,5s"}, "needs maxDeliver greater than 2"),
    ],
)
def test_bad_metadata_is_refused_naming_the_field(metadata, expected) -> None:
    with pytest.raises(ManifestError) as error:
        bus_settings(plan(**metadata))
    assert expected in str(error.value)


def test_dapr_metadata_values_are_read_as_dapr_reads_them() -> None:
    settings = bus_settings(
        plan(natsURL="nats://x", ackWait="1500", backOff="1s, 5s", maxDeliver="5", heartbeat="2s")
    )
    assert (settings.ackWait, settings.backOff, settings.heartbeat) == (1.5, [1.0, 5.0], 2.0)


def test_an_openfunction_nats_streaming_bus_maps_to_valid_settings() -> None:
    catalog = load_catalog([str(FIXTURES / "eventbus.yaml")], [])
    bus_plan = plan_bus(catalog.get("EventBus", "default", "default"), catalog, "default")
    settings = bus_settings(bus_plan)
    assert isinstance(settings, JetStreamSettings)
    assert (settings.natsURL, settings.durableName) == ("nats://nats.default:4222", "ImDurable")


async def test_an_unreachable_server_fails_fast_and_retriable() -> None:
    url = f"nats://127.0.0.1:{servers.free_port()}"
    bus = JetStreamBus(JetStreamSettings(natsURL=url))
    started = time.monotonic()
    with pytest.raises(BusError) as error:
        await bus.start()
    assert time.monotonic() - started < 3
    assert error.value.retriable
    assert f"cannot reach NATS at {url}" in str(error.value)
    assert bus.describe() == f"NATS JetStream at {url}"
    await bus.close()


async def test_a_topic_that_is_not_a_subject_and_an_oversized_event_are_refused(bus) -> None:
    with pytest.raises(BusError, match="cannot be a NATS subject") as bad_topic:
        await bus.publish("orders created", CloudEvent.create("t", "/s", {}))
    assert not bad_topic.value.retriable
    limit = bus._link.nc.max_payload
    huge = CloudEvent.create("t", "/s", b"x" * limit)
    with pytest.raises(BusError, match="over the max_payload") as too_big:
        await bus.publish(f"js-{uuid.uuid4().hex[:12]}", huge)
    assert not too_big.value.retriable


# -- outages ----------------------------------------------------------------------


async def test_a_publish_the_server_never_confirms_fails_retriable(monkeypatch, topic) -> None:
    monkeypatch.delenv("FNEVENTS_TEST_NATS_URL", raising=False)  # our own, to freeze
    monkeypatch.setattr(jetstream_link, "PUBLISH_TIMEOUT", 1)
    with servers.running(servers.nats()) as broker:
        async with make_bus(broker) as bus:
            await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 0}))
            with broker.paused():  # a hung server: connected, silent
                started = time.monotonic()
                with pytest.raises(BusError, match="did not confirm a publish") as error:
                    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="e1"))
                assert error.value.retriable
                assert time.monotonic() - started < 3.5
            await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="e1"))


async def test_a_broker_restart_mid_run_loses_nothing(monkeypatch, topic) -> None:
    monkeypatch.delenv("FNEVENTS_TEST_NATS_URL", raising=False)  # our own, restartable
    count, reports = 300, []
    with servers.running(servers.nats()) as broker:
        async with make_bus(broker, ackWait="1s") as bus:
            sub = await ResilientSubscription(bus, topic, "g", reports.append).open()
            received: set[int] = set()

            async def consume() -> None:
                async for message in sub:
                    received.add(message.event.data["n"])
                    await message.ack()

            halfway = asyncio.Event()

            async def produce() -> None:
                for n in range(count):
                    event = CloudEvent.create("t", "/s", {"n": n}, id=f"restart-{n}")
                    await publish_until_accepted(bus, topic, event, None, reports.append)
                    if n == count // 3:
                        halfway.set()
                    await asyncio.sleep(0.005)

            async def restart_when_halfway() -> None:
                await halfway.wait()
                await asyncio.to_thread(broker.restart)  # publishing goes on meanwhile

            restarter = asyncio.create_task(restart_when_halfway())
            consumer = asyncio.create_task(consume())
            await asyncio.wait_for(produce(), 60)
            async with asyncio.timeout(30):
                while len(received) < count:
                    await asyncio.sleep(0.05)
            await sub.close()
            await consumer
            await restarter
    assert received == set(range(count))
    assert any("lost the bus" in r or "cannot publish" in r for r in reports), reports


async def _publish_without_waiting(nc: Any, subject: str, stop: asyncio.Event) -> None:
    """Raw publishes that never wait for a PubAck, so nats-py always has bytes buffered."""
    while not stop.is_set():
        try:
            for _ in range(50):
                await nc.publish(subject, b"x" * 200)
        except Exception:  # noqa: BLE001 - the connection went: that is the point
            return
        await asyncio.sleep(0)


async def test_a_connection_nats_py_closed_without_its_callbacks_is_replaced(
    monkeypatch, topic
) -> None:
    """nats-py 2.x closes a connection whose server went while bytes were buffered by
    awaiting ``transport.drain()``, which raises, before it calls disconnected_cb and
    closed_cb: the client ends CLOSED and nobody is told. The bus must not reuse it:
    publishing and reading work again once the server is back (before the fix every
    retry reused the dead connection and said "nats: connection closed" forever)."""
    monkeypatch.delenv("FNEVENTS_TEST_NATS_URL", raising=False)  # our own, restartable
    reports: list[str] = []
    with servers.running(servers.nats()) as broker:
        async with make_bus(broker, ackWait="1s") as bus:
            await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 0}, id="before"))
            sub = await ResilientSubscription(bus, topic, "g", reports.append).open()
            assert (await receive(sub, TIMEOUT)).event.id == "before"
            link = bus._link
            assert link is not None
            stop = asyncio.Event()
            flood = asyncio.create_task(_publish_without_waiting(link.nc, f"{topic}.raw", stop))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(broker.stop)  # SIGTERM, while bytes are buffered
            async with asyncio.timeout(TIMEOUT):
                while not link.nc.is_closed:
                    await asyncio.sleep(0.01)
            stop.set()
            await flood
            # the precondition: nats-py closed the connection and skipped its callbacks
            assert not link.lost.is_set(), "nats-py called its callbacks; nothing to test"
            await asyncio.to_thread(broker.start)  # same port, same store

            event = CloudEvent.create("t", "/s", {"n": 1}, id="after")
            async with asyncio.timeout(15):
                await publish_until_accepted(bus, topic, event, None, reports.append)
            again = await receive(sub, 15)
            while again.event.id == "before":  # (if its ack had not landed)
                await again.ack()
                again = await receive(sub, 15)
            assert again.event.id == "after"
            await again.ack()
            assert bus._link is not link, "a new connection, not the closed one"
            await sub.close()


async def test_a_lost_connection_stops_handing_out_what_was_pulled_ahead(
    monkeypatch, topic
) -> None:
    """Once the connection is gone, messages pulled ahead are not handed out (their acks
    could not reach the server: each would come back after ackWait, a duplicate);
    closing the member gives them back with naks sent on the next connection, so the
    next member gets them at once, and an ack made during the outage lands too (before
    the fix the buffer kept being handed out, and those acks were dropped)."""
    monkeypatch.delenv("FNEVENTS_TEST_NATS_URL", raising=False)  # our own, restartable
    with servers.running(servers.nats()) as broker:
        async with make_bus(broker, ackWait="30s") as bus:
            sub = await bus.subscribe(topic, "g")
            for n in range(20):
                await bus.publish(topic, CloudEvent.create("t", "/s", {"n": n}, id=f"ev-{n}"))
            first = await receive(sub, TIMEOUT)
            await asyncio.sleep(0.2)  # the member has the other 19 pulled ahead
            await asyncio.to_thread(broker.stop)
            with pytest.raises(BusError) as lost:
                await receive(sub, TIMEOUT)
            assert lost.value.retriable
            await first.ack()  # during the outage: kept for the next connection
            await sub.close(drain_timeout=0)
            await asyncio.to_thread(broker.start)

            again = await bus.subscribe(topic, "g")
            started = time.monotonic()
            back = [await receive(again, TIMEOUT) for _ in range(19)]
            assert time.monotonic() - started < 5, "given back at once, not after ackWait"
            assert {m.event.id for m in back} == {f"ev-{n}" for n in range(20)} - {first.event.id}
            for message in back:
                await message.ack()
            assert await nothing_within(again, 1.0), "the outage's ack landed"
            await again.close()
