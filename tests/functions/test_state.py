"""context.state on a real Redis: Dapr's layout, key prefixes, a missing key, delete, and
concurrent saves from two real processes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import uuid

import pytest
from redis.asyncio import Redis

from events.brokers.redis.kv import RedisKeyValue
from events.brokers.redis.state import RedisStateSettings
from events.functions.state import StateConflictError, StateStore, StateStores, key_prefix

pytestmark = pytest.mark.redis


def settings(redis_broker, **extra) -> RedisStateSettings:
    return RedisStateSettings(redisHost=redis_broker.address, **extra)


@pytest.fixture
async def redis(redis_broker):
    client = Redis(host=redis_broker.host, port=redis_broker.port)
    yield client
    await client.aclose()


async def store_for(redis_broker, prefix: str, **extra) -> tuple[StateStore, RedisKeyValue]:
    keys = RedisKeyValue(settings(redis_broker, **extra), "statestore")
    return StateStore("s", keys, prefix, asyncio.get_running_loop()), keys


async def test_values_are_stored_as_dapr_stores_them(redis_broker, redis) -> None:
    app = f"fn-{uuid.uuid4().hex[:8]}"
    store, keys = await store_for(redis_broker, app)
    try:
        assert await store.save("order", {"n": 1}) == "1"
        assert await store.save("order", {"n": 2}) == "2"
        raw = await redis.hgetall(f"{app}||order")
        assert raw == {b"data": b'{"n":2}', b"version": b"2"}
        assert await store.get("order") == {"n": 2}
        await store.save("text", "hello")
        assert await redis.hget(f"{app}||text", "data") == b'"hello"'
        assert await store.get("text") == "hello"
        await store.save("blob", b"\x00\xff")
        assert await store.get("blob") == b"\x00\xff"
        assert await store.get("order", raw=True) == b'{"n":2}'
    finally:
        await keys.close()


async def test_a_missing_key_is_none_and_delete_removes(redis_broker, redis) -> None:
    app = f"fn-{uuid.uuid4().hex[:8]}"
    store, keys = await store_for(redis_broker, app)
    try:
        assert await store.get("nothing") is None
        assert await store.get_with_etag("nothing") == (None, None)
        assert await store.delete("nothing") is False
        await store.save("k", 1)
        assert await store.delete("k") is True
        assert await store.get("k") is None
        assert await redis.exists(f"{app}||k") == 0
    finally:
        await keys.close()


async def test_an_outdated_etag_changes_nothing(redis_broker) -> None:
    store, keys = await store_for(redis_broker, f"fn-{uuid.uuid4().hex[:8]}")
    try:
        etag = await store.save("k", "a")
        await store.save("k", "b")
        with pytest.raises(StateConflictError, match="etag"):
            await store.save("k", "c", etag=etag)
        with pytest.raises(StateConflictError):
            await store.delete("k", etag=etag)
        value, current = await store.get_with_etag("k")
        assert value == "b"
        assert await store.save("k", "d", etag=current) == str(int(current) + 1)
    finally:
        await keys.close()


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("appid", "hello-default||k"),
        ("name", "statestore||k"),
        ("namespace", "default.hello-default||k"),
        ("none", "k"),
        ("custom", "custom||k"),
    ],
)
async def test_key_prefix_strategies(redis_broker, redis, strategy, expected) -> None:
    prefix = key_prefix(strategy, "statestore", "hello", "default")
    store, keys = await store_for(redis_broker, prefix, keyPrefix=strategy)
    key = f"k{uuid.uuid4().hex[:6]}"
    try:
        await store.save(key, strategy)
        stored = expected.replace("||k", f"||{key}") if "||" in expected else key
        assert await redis.hget(stored, "data") == f'"{strategy}"'.encode()
        assert await store.delete(key)
    finally:
        await keys.close()


def test_a_key_prefix_with_the_separator_is_refused(redis_broker) -> None:
    with pytest.raises(ValueError, match="'\\|\\|'"):
        settings(redis_broker, keyPrefix="a||b")


async def test_several_stores_are_picked_by_name(redis_broker) -> None:
    one, keys = await store_for(redis_broker, f"p1-{uuid.uuid4().hex[:8]}")
    two = StateStore("two", keys, f"p2-{uuid.uuid4().hex[:8]}", asyncio.get_running_loop())
    try:
        stores = StateStores("default/f", {"one": one, "two": two})
        with pytest.raises(Exception, match=re.escape('context.state["name"]')):
            stores.get("k")
        assert await stores["two"].save("k", 1) == "1"
        assert "one" in stores and stores.names == ["one", "two"]
        with pytest.raises(KeyError, match="no state store named 'three'"):
            stores["three"]
        assert await StateStores("default/f", {"one": one}).get("nope") is None
    finally:
        await keys.close()


async def test_a_plain_function_in_a_thread_gets_results(redis_broker) -> None:
    store, keys = await store_for(redis_broker, f"fn-{uuid.uuid4().hex[:8]}")

    def sync_function() -> object:
        store.save("k", [1, 2])
        return store.get("k")

    try:
        assert await asyncio.to_thread(sync_function) == [1, 2]
    finally:
        await keys.close()


WORKER = """
import asyncio, sys
from events.brokers.redis.kv import RedisKeyValue
from events.brokers.redis.state import RedisStateSettings
from events.functions.state import StateConflictError, StateStore

async def main(address, prefix, mode, rounds):
    keys = RedisKeyValue(RedisStateSettings(redisHost=address), "statestore")
    store = StateStore("s", keys, prefix, asyncio.get_running_loop())
    for i in range(rounds):
        if mode == "lww":
            await store.save("last", {"writer": sys.argv[5], "i": i})
            continue
        while True:  # optimistic increment: read with the etag, save with it, retry on conflict
            value, etag = await store.get_with_etag("counter")
            try:
                await store.save("counter", (value or 0) + 1, etag=etag)
                break
            except StateConflictError:
                continue
    await keys.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


def run_two(redis_broker, prefix: str, mode: str, rounds: int) -> None:
    code = textwrap.dedent(WORKER)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, redis_broker.address, prefix, mode, str(rounds), name]
        )
        for name in ("a", "b")
    ]
    for process in processes:
        assert process.wait(timeout=60) == 0


async def test_concurrent_optimistic_increments_from_two_processes_lose_none(
    redis_broker,
) -> None:
    prefix = f"fn-{uuid.uuid4().hex[:8]}"
    # counter starts missing: the first save of each process uses etag None (unconditional),
    # so seed it to make every save conditional
    store, keys = await store_for(redis_broker, prefix)
    try:
        await store.save("counter", 0)
        await asyncio.to_thread(run_two, redis_broker, prefix, "etag", 200)
        assert await store.get("counter") == 400
    finally:
        await keys.close()


async def test_concurrent_last_write_wins_saves_never_corrupt(redis_broker, redis) -> None:
    prefix = f"fn-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(run_two, redis_broker, prefix, "lww", 300)
    stored = await redis.hgetall(f"{prefix}||last")
    assert set(stored) == {b"data", b"version"}
    assert stored[b"version"] == b"600"  # every save bumped the version exactly once
    store, keys = await store_for(redis_broker, prefix)
    try:
        last = await store.get("last")
        assert last["writer"] in ("a", "b") and last["i"] == 299
    finally:
        await keys.close()


STATE_CODE = """
async def count(context, event):
    total = (await context.state.get("visits")) or 0
    await context.state.save("visits", total + 1)
    return {"visits": total + 1}


def forget(context, event):
    return {"deleted": context.state["cache"].delete("visits")}
"""


def state_component(name: str, address: str, prefix: str | None = None) -> str:
    extra = f"    - {{name: keyPrefix, value: {prefix}}}\n" if prefix else ""
    return f"""
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: {name}}}
spec:
  type: state.redis
  version: v1
  metadata:
    - {{name: redisHost, value: '{address}'}}
{extra}"""


async def test_a_hosted_function_uses_its_declared_stores(tmp_path, redis_broker, redis) -> None:
    import aiohttp

    from tests.functions.harness import function, start, write_app

    name = f"counter-{uuid.uuid4().hex[:6]}"
    path = write_app(
        tmp_path,
        STATE_CODE,
        state_component("statestore", redis_broker.address),
        state_component("cache", redis_broker.address, "name"),
        function(name, "count", "  states: {visits: statestore}\n"),
        function(f"{name}-forget", "forget", "  states: {a: statestore, cache: cache}\n"),
    )
    runtime = await start(path)
    try:
        async with aiohttp.ClientSession() as http:
            for expected in (1, 2):
                async with http.post(runtime.functions[("default", name)].url) as r:
                    assert (r.status, await r.json()) == (200, {"visits": expected})
            # the appid prefix is OpenFunction's Dapr app id, {name}-{namespace}
            assert await redis.hget(f"{name}-default||visits", "data") == b"2"
            await redis.hset("cache||visits", mapping={"data": b"1", "version": b"1"})
            async with http.post(runtime.functions[("default", f"{name}-forget")].url) as r:
                assert (r.status, await r.json()) == (200, {"deleted": True})
            assert await redis.exists("cache||visits") == 0
    finally:
        await runtime.stop()


def test_a_state_naming_a_missing_component_is_a_load_error(tmp_path) -> None:
    from events.app.load import load_catalog
    from events.errors import ManifestErrors
    from tests.functions.harness import function, write_app

    path = write_app(tmp_path, STATE_CODE, function("f", "count", "  states: {s: nowhere}\n"))
    with pytest.raises(ManifestErrors, match=r"spec\.states\.s.*Component 'nowhere' not found"):
        load_catalog([str(path)], [])


def test_validate_shows_each_store_and_its_keys(tmp_path) -> None:
    from events.app.load import load_catalog
    from events.app.report import describe_catalog
    from tests.functions.harness import function, write_app

    path = write_app(
        tmp_path,
        STATE_CODE,
        state_component("statestore", "localhost:6379"),
        state_component("cache", "localhost:6379", "none"),
        function("f", "count", "  states: {visits: statestore, cache: cache}\n"),
    )
    lines = list(describe_catalog(load_catalog([str(path)], [])))
    assert any("state 'visits': state.redis Component statestore" in line for line in lines)
    assert any("keys f-default||KEY" in line for line in lines), lines
    assert any("state 'cache'" in line and "keys KEY (no prefix)" in line for line in lines)
