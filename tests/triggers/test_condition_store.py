"""Condition state in a Redis store (``conditionStore``): shared by replicas, kept across
restarts, timed by the Redis server's clock, and never the reason an event is lost.

Every test uses a real Redis: the session broker, or a private one for the test that
stops it. Each test names its own trigger, so their hashes never collide.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from events.brokers.memory.bus import MemoryBus
from events.brokers.redis.bus import RedisBus, RedisSettings
from events.brokers.redis.state import EXPIRY_MARGIN_MS, RedisState, RedisStateSettings, state_key
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.delivery.sinks import SinkClient
from events.errors import StateStoreError
from events.observability.console import Console
from events.observability.metrics import Metrics
from tests.brokers import servers
from tests.helpers import counter, nothing_within, received, until
from tests.triggers.harness import FAST, OwnedTrigger
from triggers.conditions import Condition
from triggers.state import LocalState
from triggers.subscriber import DeliveryContext, Subscriber

pytestmark = pytest.mark.redis

INPUTS = ("a", "b")
#: subscriber 0 fires on any event while `a` is fresh; subscriber 1 needs both inputs
CONDITIONS = ("a", "a && b")
RECEIVE = 5.0


class Setup:
    """One trigger (unique name and topics per test) that replicas are built from."""

    def __init__(self, bus: EventBus, store_address: str | None, window: float = 60.0) -> None:
        tag = uuid.uuid4().hex[:10]
        self.bus, self.store_address, self.window = bus, store_address, window
        self.name = f"ns/cs-{tag}"
        self.topics = {name: f"cs-{tag}-{name}" for name in INPUTS}
        self.outputs = [f"cs-{tag}-out{index}" for index in range(len(CONDITIONS))]

    def replica(self) -> tuple[OwnedTrigger, DeliveryContext, io.StringIO]:
        """A new replica (as a new process would build it: its own store connection)."""
        log = io.StringIO()
        ctx = DeliveryContext(self.bus, SinkClient(), Metrics(), Console(stream=log))
        state = None
        if self.store_address is not None:
            settings = RedisStateSettings(redisHost=self.store_address, readTimeout="1s")
            state = RedisState(settings, self.name, self.window, "conditions")
        subscribers = [
            Subscriber(
                trigger=self.name,
                index=index,
                condition=Condition(condition, INPUTS),
                policy=FAST,
                dead_letter_topic=f"{self.name}-deadletter",
                topic=self.outputs[index],
            )
            for index, condition in enumerate(CONDITIONS)
        ]
        group = self.name.replace("/", "-")
        runner = OwnedTrigger(
            self.name, self.topics, subscribers, self.window, group, ctx, state=state
        )
        return runner, ctx, log

    async def watch(self) -> list[Subscription]:
        """Subscriptions to each subscriber's output topic."""
        return [await self.bus.subscribe(topic, "inspector") for topic in self.outputs]

    async def send(self, input_name: str, n: int) -> CloudEvent:
        event = CloudEvent.create("test.cs", "/tests", {"n": n}, id=f"{input_name}-{n}")
        await self.bus.publish(self.topics[input_name], event)
        return event


@pytest.fixture
async def memory_bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    yield bus
    await bus.close()


@pytest.fixture
async def redis_bus(redis_broker) -> AsyncIterator[RedisBus]:
    settings = RedisSettings(
        redisHost=redis_broker.address, processingTimeout="1s", redeliverInterval="200ms"
    )
    async with RedisBus(settings) as bus:
        yield bus


def handled(ctx: DeliveryContext, name: str, input_name: str) -> int:
    return int(counter(ctx.metrics, "trigger_events", name, input_name))


async def test_an_input_seen_by_one_replica_counts_at_another(memory_bus, redis_broker) -> None:
    setup = Setup(memory_bus, redis_broker.address)
    only_a, both = await setup.watch()
    first, first_ctx, _ = setup.replica()
    second, second_ctx, _ = setup.replica()
    await first.start()
    await setup.send("a", 1)
    assert (await received(only_a, RECEIVE)).id == "a-1"
    await second.start()
    await first.stop()  # from here on only the second replica reads the group
    await setup.send("b", 2)
    assert (await received(both, RECEIVE)).id == "b-2", "the second replica sees `a` from the first"
    assert (await received(only_a, RECEIVE)).id == "b-2"
    await second.stop()
    assert (handled(first_ctx, setup.name, "a"), handled(first_ctx, setup.name, "b")) == (1, 0)
    assert (handled(second_ctx, setup.name, "a"), handled(second_ctx, setup.name, "b")) == (0, 1)


async def test_replicas_reading_at_once_agree_on_every_event(redis_bus, redis_broker) -> None:
    setup = Setup(redis_bus, redis_broker.address)
    _, both = await setup.watch()
    replicas = [setup.replica(), setup.replica()]
    for runner, _, _ in replicas:
        await runner.start()
    await setup.send("a", 0)
    await until(
        lambda: sum(handled(c, setup.name, "a") for _, c, _ in replicas) > 0,
        "a replica handled `a`",
        RECEIVE,
    )
    for n in range(1, 21):
        await setup.send("b", n)
        assert (await received(both, RECEIVE)).id == f"b-{n}", (
            "every `b` fires `a && b`, whoever reads it"
        )
    for runner, _, _ in replicas:
        await runner.stop()
    a_reader = next(ctx for _, ctx, _ in replicas if handled(ctx, setup.name, "a"))
    other = next(ctx for _, ctx, _ in replicas if ctx is not a_reader)
    assert handled(other, setup.name, "b") > 0, "the bus gave the other replica no `b`"


async def test_a_restarted_trigger_still_sees_an_input_from_before(
    memory_bus, redis_broker
) -> None:
    setup = Setup(memory_bus, redis_broker.address)
    only_a, both = await setup.watch()
    before, _, _ = setup.replica()
    await before.start()
    await setup.send("a", 1)
    assert (await received(only_a, RECEIVE)).id == "a-1"
    await before.stop()
    after, _, _ = setup.replica()
    await after.start()
    await setup.send("b", 2)
    assert (await received(both, RECEIVE)).id == "b-2"
    await after.stop()


async def test_without_a_store_a_restart_forgets_the_inputs(memory_bus) -> None:
    """The control for the test above: the in-process default starts empty."""
    setup = Setup(memory_bus, None)
    only_a, both = await setup.watch()
    before, _, _ = setup.replica()
    assert isinstance(before.state, LocalState)
    await before.start()
    await setup.send("a", 1)
    assert (await received(only_a, RECEIVE)).id == "a-1"
    await before.stop()
    after, ctx, _ = setup.replica()
    await after.start()
    await setup.send("b", 2)
    await until(lambda: handled(ctx, setup.name, "b") > 0, "the trigger handled `b`", RECEIVE)
    assert await nothing_within(both, 0.3)
    await after.stop()


async def test_the_window_still_expires(memory_bus, redis_broker) -> None:
    setup = Setup(memory_bus, redis_broker.address, window=1.0)
    only_a, both = await setup.watch()
    runner, ctx, _ = setup.replica()
    await runner.start()
    await setup.send("a", 1)
    assert (await received(only_a, RECEIVE)).id == "a-1"
    await asyncio.sleep(1.1)
    await setup.send("b", 2)
    await until(lambda: handled(ctx, setup.name, "b") > 0, "the trigger handled `b`", RECEIVE)
    assert await nothing_within(both, 0.3), "`a` is more than one window old"
    assert await nothing_within(only_a, 0.1)
    await setup.send("a", 3)
    assert (await received(only_a, RECEIVE)).id == "a-3"
    assert (await received(both, RECEIVE)).id == "a-3", "`b` is well within its window"
    await runner.stop()


async def test_the_hash_expires_soon_after_the_window(redis_broker) -> None:
    name = f"ns/cs-{uuid.uuid4().hex[:10]}"
    state = RedisState(RedisStateSettings(redisHost=redis_broker.address), name, 0.3, "c")
    await state.mark("a", 0.0)
    async with Redis(host=redis_broker.host, port=redis_broker.port) as admin:
        ttl = await admin.pttl(state_key(name))
        assert 0 < ttl <= 300 + EXPIRY_MARGIN_MS
        await asyncio.sleep((300 + EXPIRY_MARGIN_MS) / 1000 + 0.2)
        assert not await admin.exists(state_key(name)), "nothing is left behind"
    await state.close()


async def test_freshness_uses_the_redis_servers_clock(redis_broker) -> None:
    """Two replicas whose own clocks are days apart still agree."""
    name = f"ns/cs-{uuid.uuid4().hex[:10]}"
    settings = RedisStateSettings(redisHost=redis_broker.address)
    here, there = (RedisState(settings, name, 5.0, "c") for _ in range(2))
    assert await here.mark("a", 1_000.0) == {"a": True}
    assert await there.mark("b", 1_000.0 + 86_400 * 3) == {"a": True, "b": True}
    assert await here.mark("a", 0.0) == {"a": True, "b": True}
    await here.close()
    await there.close()


async def test_an_unreachable_store_raises_a_specific_error() -> None:
    with servers.running(servers.redis()) as private:
        address = private.address
    settings = RedisStateSettings(redisHost=address, dialTimeout="500ms")
    state = RedisState(settings, "ns/t", 60.0, "conditions")
    with pytest.raises(StateStoreError, match=f"cannot reach Redis at {address}") as caught:
        await state.mark("a", 0.0)
    assert caught.value.retriable
    await state.close()


async def test_check_at_start_passes_on_a_reachable_store_and_names_the_problem_else(
    redis_broker,
) -> None:
    reachable = RedisState(RedisStateSettings(redisHost=redis_broker.address), "ns/t", 60, "c")
    await reachable.check()
    await reachable.close()
    with servers.running(servers.redis()) as private:
        gone = private.address
    unreachable = RedisState(
        RedisStateSettings(redisHost=gone, dialTimeout="500ms"), "ns/t", 60, "c"
    )
    with pytest.raises(StateStoreError, match=f"cannot reach Redis at {gone}") as caught:
        await unreachable.check()
    assert caught.value.retriable, "at start, the runtime waits for it like for a bus"
    await unreachable.close()


async def test_refused_credentials_are_final_at_start(redis_broker) -> None:
    user = f"cs-{uuid.uuid4().hex[:8]}"
    admin = Redis.from_url(f"redis://{redis_broker.address}")
    await admin.execute_command("ACL", "SETUSER", user, "on", ">right-password", "+@all", "~*")
    try:
        settings = RedisStateSettings(
            redisHost=redis_broker.address, redisUsername=user, redisPassword="wrong-password"
        )
        state = RedisState(settings, "ns/t", 60.0, "conditions")
        with pytest.raises(StateStoreError, match="refused the credentials") as caught:
            await state.check()
        assert not caught.value.retriable, "retrying a wrong password cannot help"
        await state.close()
    finally:
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def test_store_down_redelivers_and_evaluates_once_back(memory_bus) -> None:
    broker = servers.redis()
    if broker.external:
        pytest.skip("stops its own redis-server; FNEVENTS_TEST_REDIS_URL points at a shared one")
    with servers.running(broker) as private:
        setup = Setup(memory_bus, private.address)
        only_a, both = await setup.watch()
        runner, ctx, log = setup.replica()
        await runner.start()
        await setup.send("a", 1)
        assert (await received(only_a, RECEIVE)).id == "a-1"
        async with Redis(host=private.host, port=private.port) as admin:
            await admin.save()  # the restarted server loads this, so `a` is kept
        private.stop()
        await setup.send("b", 2)
        await asyncio.sleep(1.8)  # redelivered after 0.5 s, then 1 s: three attempts
        assert await nothing_within(only_a, 0.05), "nothing is evaluated while the store is down"
        private.start()
        assert (await received(both, RECEIVE)).id == "b-2", (
            "once back, `b` is evaluated with `a` fresh"
        )
        assert (await received(only_a, RECEIVE)).id == "b-2"
        await runner.stop()
    text = log.getvalue()
    assert text.count("cannot reach Redis") == 1, text
    assert "redelivering" not in text, "no line per event"
    assert "recovered after 3 failed attempt(s)" in text, text
    assert handled(ctx, setup.name, "b") == 4, "one delivery and three redeliveries"
