"""The hand-packed Redis commands (events/brokers/redis/resp.py) against redis-py's own.

A seeded generator builds commands: a command name (str or bytes, as the bus sends
them, or any other word), then arguments of every kind the bus sends: binary values
with ``\\r\\n``, ``$``, ``*`` and NUL in them, empty values, non-ASCII text, values
past redis-py's 6,000-byte chunking cutoff, ints (negative, zero, past 64 bits).
Each command must pack byte for byte as redis-py's ``Connection.pack_command``, and
each run of commands, joined, as its ``pack_commands`` (the pipeline's packing).

Then a sample goes to a real redis-server through ``resp.execute``: XADDs of random
fields read back with XRANGE, a refused command among good ones, and a send cancelled
while its reply is awaited (the connection must not serve stale replies after).

``FNEVENTS_FASTPATH_CASES`` sets the number of cases (default 100,000).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid

import pytest
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from events.brokers.redis import resp

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
NAMES: list[str | bytes] = ["XADD", "XACK", "xadd", b"XADD", b"XACK", "SET", "GET", "ÜBER", b"\xff"]
TEXTS = ["", "a", "*", "~", "data", "metadata", "ünïcødé", "日本語", "emoji \U0001f600", "a\r\nb"]
SPECIAL = [b"", b"\r\n", b"\r", b"\n", b"$-1\r\n", b"*0\r\n", b"\x00", b" ", b"a b", b"\xff\xfe"]
INTS = [0, 1, -1, 7, 500, 2**31, -(2**63), 2**64 + 1, 10**30]


def _bytes(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.2:
        return rng.choice(SPECIAL)
    size = rng.choice([1, 2, 9, 10, 99, 100, 1256]) if roll < 0.97 else rng.randint(5990, 70_000)
    value = bytearray(rng.randbytes(size))
    for _ in range(rng.randint(0, 3)):  # the bytes RESP frames with, anywhere
        at = rng.randint(0, len(value))
        value[at:at] = rng.choice([b"\r\n", b"$", b"*", b"\r\n$5\r\n"])
    return bytes(value)


def _text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(TEXTS)
    return "".join(
        chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0xD7FF)]))
        for _ in range(rng.randint(0, 40))
    )


def _arg(rng: random.Random) -> resp.Arg:
    roll = rng.random()
    if roll < 0.55:
        return _bytes(rng)
    if roll < 0.85:
        return _text(rng)
    return rng.choice(INTS) if rng.random() < 0.5 else rng.randint(-(10**12), 10**12)


def _command(rng: random.Random) -> list[resp.Arg]:
    return [rng.choice(NAMES), *(_arg(rng) for _ in range(rng.choice([0, 1, 2, 5, 7, 9, 40])))]


def test_packing_matches_redis_py() -> None:
    rng = random.Random(2026_13)
    connection = Connection()
    pending: list[list[resp.Arg]] = []
    for case in range(CASES):
        command = _command(rng)
        ours = resp.pack(command)
        assert ours == b"".join(connection.pack_command(*command)), (case, command)
        pending.append(command)
        if rng.random() < 0.1:  # a pipeline of the commands since the last one
            theirs = b"".join(connection.pack_commands(pending))
            assert b"".join(resp.pack(c) for c in pending) == theirs, case
            pending = []


@pytest.mark.parametrize("value", [True, False, None, 1.5, object()])
def test_refuses_what_the_bus_never_sends(value: object) -> None:
    with pytest.raises(TypeError, match="cannot send"):
        resp.pack(["SET", "k", value])  # type: ignore[list-item]


@pytest.mark.redis
async def test_round_trip_through_redis(redis_broker) -> None:
    host, _, port = redis_broker.address.rpartition(":")
    client = Redis(host=host, port=int(port))
    topic = f"p4-{uuid.uuid4().hex[:8]}"
    rng = random.Random(13)
    try:
        sent = []
        for _ in range(20):  # pipelines of up to 100 XADDs with random fields
            batch = [
                [_bytes(rng) or b"f", _bytes(rng), b"data", _bytes(rng)]
                for _ in range(rng.randint(1, 100))
            ]
            packed = b"".join(resp.pack(["XADD", topic, "*", *fields]) for fields in batch)
            replies = await resp.execute(client, packed, len(batch))
            assert all(isinstance(reply, bytes) for reply in replies)
            sent += [dict(zip(f[::2], f[1::2], strict=True)) for f in batch]
        read = await client.xrange(topic)
        assert [fields for _, fields in read] == sent
    finally:
        await client.delete(topic)
        await client.aclose()


@pytest.mark.redis
async def test_a_refused_command_takes_only_its_own_place(redis_broker) -> None:
    host, _, port = redis_broker.address.rpartition(":")
    client = Redis(host=host, port=int(port))
    key = f"p4-{uuid.uuid4().hex[:8]}"
    try:
        commands = [["SET", key, b"a\r\nb"], ["XADD", key, "*", "data", b"x"], ["GET", key]]
        packed = b"".join(resp.pack(command) for command in commands)
        ok, refused, value = await resp.execute(client, packed, 3)
        assert ok == b"OK" and value == b"a\r\nb"
        assert isinstance(refused, rx.ResponseError) and "WRONGTYPE" in str(refused)
    finally:
        await client.delete(key)
        await client.aclose()


@pytest.mark.redis
async def test_a_cancelled_send_leaves_no_reply_behind(redis_broker) -> None:
    host, _, port = redis_broker.address.rpartition(":")
    client = Redis(host=host, port=int(port), max_connections=1)
    key = f"p4-{uuid.uuid4().hex[:8]}"
    try:
        packed = resp.pack(["DEBUG", "SLEEP", "0.3"]) + resp.pack(["SET", key, "late"])
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await resp.execute(client, packed, 2)
        # the one pooled connection answers the next command, not the replies above
        assert await resp.execute(client, resp.pack(["PING"]), 1) == [b"PONG"]
    finally:
        await client.delete(key)
        await client.aclose()
