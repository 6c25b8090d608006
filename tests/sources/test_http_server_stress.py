"""The HTTP ingest's own server (:mod:`sources.http_server`) under what a hostile or
unlucky client does on a real socket: uvloop (the CLI's default loop), many upgrade
asks in one write, heads at and past the limits, a pipelined head behind a large body,
a chunked compressed body that goes on past its end, HEAD, a client that pipelines
1,000 requests before reading, and a stop with requests in flight.

Each test passes on a correct server; a failing one names the promise it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import subprocess
import tracemalloc

import pytest

from sources import http_server
from tests.brokers.servers import free_port, wait_until_listening
from tests.e2e.processes import FNEVENTS
from tests.manifests import documents
from tests.sources.test_http_source import Ingest
from tests.sources.test_http_wire import (
    Client,
    accepted,
    chunked_head,
    connected,
    frame,
    last_chunk,
    post,
    refused,
    within,
)


async def head_only(client: Client) -> bytes:
    """The next answer's status line and headers, its body (if any) left unread."""
    async with within(3.0, "an answer's head"):
        while (end := client.buffer.find(b"\r\n\r\n")) < 0:
            data = await client.loop.sock_recv(client.sock, 65536)
            assert data, f"closed mid-answer: {bytes(client.buffer)!r}"
            client.buffer += data
    head = bytes(client.buffer[: end + 4])
    del client.buffer[: end + 4]
    return head


async def stopped_listening(port: int) -> None:
    """Once a connection to ``port`` is refused."""
    async with within(3.0, "the server to stop listening"):
        while True:
            try:
                async with connected(port):
                    pass
            except ConnectionRefusedError:
                return
            await asyncio.sleep(0.01)


# -- the loop the CLI runs on -----------------------------------------------------------------


async def test_fnevents_run_answers_a_post_on_uvloop(tmp_path) -> None:
    """``fnevents run`` serves on uvloop where it is installed (events/cli/entry.py), whose
    transports are not ``asyncio.Transport`` subclasses. A real process, as run."""
    port = free_port()
    spec = {"host": "127.0.0.1", "port": port, "path": "/readings"}
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        documents.bus(maxPending=100) + documents.eventsource("ingest", "http", {"readings": spec})
    )
    process = await asyncio.create_subprocess_exec(
        *FNEVENTS,
        "run",
        "-f",
        str(manifest),
        "--port",
        "0",
        env={**os.environ, "FNEVENTS_LOOP": "uvloop"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_until_listening(port, timeout=20)
        async with connected(port) as client:
            await client.send(post(b'{"n": 1}', key="uv", close=True))
            answer = await client.answer()
            await client.closed()
    finally:
        process.terminate()
        output, _ = await process.communicate()
    accepted(answer, "http:uv")
    assert b"Traceback" not in output, output.decode()


# -- reading heads ------------------------------------------------------------------------------


async def test_many_upgrade_asks_in_one_write_are_each_answered_in_order(tmp_path) -> None:
    """Each ask is read again without Upgrade; that must not nest once per request (a
    read holds hundreds of these 90-byte requests)."""
    count = 2000
    ask = b"POST /readings HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    message = b"".join(ask + b'Content-Length: 8\r\n\r\n{"n": %d}' % (n % 10) for n in range(count))
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(message)
        answers = [await client.answer() for _ in range(count)]
    assert [answer.status for answer in answers] == [200] * count
    assert [answer.json()["accepted"] for answer in answers] == [1] * count


@pytest.mark.parametrize(("name_and_value", "status"), [(8190, 200), (8191, 431)])
async def test_a_header_line_is_limited_to_8190_bytes_of_name_and_value(
    tmp_path, name_and_value, status
) -> None:
    name = b"X-Pad"
    line = name + b": " + b"a" * (name_and_value - len(name))
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', [line], key="line", close=True))
        answer = await client.answer()
        await client.closed()
    assert answer.status == status, answer


@pytest.mark.parametrize(("lines", "status"), [(128, 200), (129, 431)])
async def test_a_head_is_limited_to_128_header_lines(tmp_path, lines, status) -> None:
    fixed = 5  # Host, Content-Type, Idempotency-Key, Content-Length, Connection
    extra = [b"X-H%d: v" % n for n in range(lines - fixed)]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', extra, key="lines", close=True))
        answer = await client.answer()
        await client.closed()
    assert answer.status == status, answer


async def test_a_head_past_64_kib_in_one_write_gets_431(tmp_path) -> None:
    """100 lines of 1,000 bytes: each line and their count within the limits, the head
    (about 100 KB) past MAX_HEAD_BYTES however the client's writes fall."""
    lines = [b"X-H%d: " % n + b"a" * 1000 for n in range(100)]
    message = post(b'{"n": 1}', lines, key="big-head", close=True)
    assert message.index(b"\r\n\r\n") > http_server.MAX_HEAD_BYTES
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(message)
        answer = await client.answer()
        await client.closed()
    refused(answer, 431, "head")


async def test_a_small_head_read_along_with_a_large_body_is_not_too_large(tmp_path) -> None:
    """A pipelined request's head starts in the same read as 200 KB of the body before
    it; the bytes of that body are not the head's."""
    body = b'{"pad": "' + b"x" * 200_000 + b'"}'
    first_head, first_body = post(body, [b"Expect: 100-continue"], key="big").split(b"\r\n\r\n")
    second = post(b'{"n": 2}', key="second", close=True)
    async with Ingest(tmp_path, max_body=300_000) as ingest, connected(ingest.port) as client:
        await client.send(first_head + b"\r\n\r\n")
        assert (await client.answer()).status == 100  # the head is read
        await client.send(first_body + second[:30])  # one write: one read, most likely
        first = await client.answer()
        await client.send(second[30:])
        following = await client.answer()
        await client.closed()
    accepted(first, "http:big")
    accepted(following, "http:second")


# -- bodies ------------------------------------------------------------------------------------


async def test_a_chunked_gzip_body_cannot_go_on_past_its_end(tmp_path) -> None:
    """A chunked body has no declared length to check; past the end of its gzip stream
    the bytes must not be held (16 MB sent here, maxBodyBytes 2,048) nor the body taken."""
    pad = frame(b"\0" * 65536)

    async def send_past_the_end(client: Client) -> None:
        with contextlib.suppress(OSError):  # refused: the server may close as it comes
            await client.send(*[pad] * 256, last_chunk())

    tracemalloc.start()
    try:
        async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
            await client.send(
                chunked_head(headers=[b"Content-Encoding: gzip", b"Idempotency-Key: tail"])
                + frame(gzip.compress(b'{"n": 1}'))
            )
            sending = asyncio.create_task(send_past_the_end(client))
            answer = await client.answer(timeout=10)
            sending.cancel()
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer.status in (400, 413), answer
    assert peak < 8_000_000, f"{peak} bytes held for a body limited to 2,048"


async def test_an_answer_to_head_has_no_content(tmp_path) -> None:
    """RFC 9110 9.3.2: the bytes after a HEAD's answer head are the next answer."""
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(
            b"HEAD /readings HTTP/1.1\r\nHost: x\r\n\r\n" + post(b'{"n": 1}', key="h", close=True)
        )
        head = await head_only(client)
        answer = await client.answer()
    assert head.startswith(b"HTTP/1.1 405 "), head
    accepted(answer, "http:h")


# -- flow control -----------------------------------------------------------------------------


async def test_1000_pipelined_requests_unread_stay_bounded_and_come_back_in_order(
    tmp_path,
) -> None:
    count = 1000
    message = b"".join(post(b'{"n": %d}' % n, key=f"p{n}") for n in range(count))
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await client.send(message)  # and nothing read yet
            answers = [await client.answer(timeout=10) for _ in range(count)]
            growth = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    for n, answer in enumerate(answers):
        accepted(answer, f"http:p{n}")
    # the bus holds 1,000 events; the server's share is the rest
    assert growth < 8_000_000, f"{growth} bytes for {len(message)} bytes of requests"


# -- stopping ----------------------------------------------------------------------------------


async def test_stop_leaves_no_request_being_handled(tmp_path, monkeypatch) -> None:
    """The bus is full (maxPending 1, no reader): requests wait. A request that arrives
    on an open connection while the server stops must not outlive the stop either."""
    monkeypatch.setattr(http_server, "STOP_GRACE_SECONDS", 0.5)
    ingest = Ingest(tmp_path, max_pending=1)
    await ingest.__aenter__()
    async with connected(ingest.port) as busy, connected(ingest.port) as idle:
        await idle.send(post(b'{"n": 0}', key="fills-the-bus"))
        accepted(await idle.answer(), "http:fills-the-bus")
        await busy.send(post(b'{"n": 1}', key="waits"))
        stopping = asyncio.create_task(ingest.runtime.stop(drain_timeout=0.5))
        await stopped_listening(ingest.port)  # the server is stopping
        await idle.send(post(b'{"n": 2}', key="during-the-stop"))
        async with within(5.0, "the stop"):
            await stopping
        left = [
            task
            for task in asyncio.all_tasks()
            if task is not asyncio.current_task()
            and getattr(task.get_coro(), "__qualname__", "") == "_Connection._handle"
        ]
        await busy.closed()
        await idle.closed()
    for task in left:
        task.cancel()
    assert not left, f"requests still being handled after the stop: {left}"
