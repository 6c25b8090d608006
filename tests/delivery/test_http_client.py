"""The sinks' lean HTTP/1.1 client (events/delivery/http_client.py) against real servers.

Servers are aiohttp apps where what they answer is ordinary, and raw ``asyncio.start_server``
servers on 127.0.0.1 where a test needs byte-exact control of the answer or of the
connection (when it is closed, how many are open at once). A raw server counts what it saw:
accepted connections, connections open at once (and the peak), every request with its
bytes, and the client's EOF on each connection.

The TLS test makes its self-signed certificate with the ``cryptography`` package (it comes
with ``moto[server]``, a test dependency).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import random
import ssl
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict, CIMultiDictProxy

from events.cloudevent import CloudEvent
from events.delivery import http_client
from events.delivery.http_client import (
    BadAnswer,
    BadRequest,
    CannotConnect,
    ConnectionLost,
    HttpAnswer,
    HttpClient,
    HttpError,
)
from events.delivery.sinks import SinkClient
from tests.brokers.servers import free_port
from tests.helpers import until
from tests.sink import serve

#: How long a test waits for something a server or the client must do promptly.
PROMPT = 2.0

# -- a raw HTTP server ---------------------------------------------------------------------


@dataclass
class Request:
    head: bytes  # the request line and header lines, up to and including the blank line
    body: bytes

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode()

    @property
    def headers(self) -> list[tuple[str, str]]:
        lines = self.head.decode("utf-8").split("\r\n")[1:-2]
        fields = [line.split(":", 1) for line in lines]
        return [(name, value.strip(" ")) for name, value in fields]


class Conn:
    """The server's side of one accepted connection."""

    def __init__(
        self, server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.requests: list[Request] = []
        self.eof = asyncio.Event()  # the client closed the connection
        self.closed = False  # the server closed it

    async def request(self) -> Request | None:
        """The next whole request (by its Content-Length), or None at the client's EOF."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self.server.problems.append(f"a request cut short: {exc.partial!r}")
            self.eof.set()
            return None
        except ConnectionError:
            self.eof.set()
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = Request(head, await self.reader.readexactly(length))
        self.requests.append(request)
        self.server.requests.append(request)
        return request

    async def send(self, *pieces: bytes, pause: float = 0.0) -> None:
        """Write ``pieces`` one after another, ``pause`` seconds apart (the server's own
        pace, so that the client reads them in separate chunks)."""
        for n, piece in enumerate(pieces):
            if n and pause:
                await asyncio.sleep(pause)
            self.writer.write(piece)
            await self.writer.drain()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.open -= 1
            self.writer.close()


Script = Callable[[Conn], Awaitable[None]]


class RawServer:
    """``asyncio.start_server`` on a free loopback port; ``script`` plays each connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections: list[Conn] = []
        self.requests: list[Request] = []
        self.problems: list[str] = []
        self.open = 0
        self.peak = 0
        self.port = 0
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in self.connections:
            conn.close()
        await self._server.wait_closed()
        if exc[0] is None:  # else the test's own failure says more
            assert not self.problems, self.problems

    def bodies(self) -> list[bytes]:
        return [request.body for request in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        conn = Conn(self, reader, writer)
        self.connections.append(conn)
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            await self.script(conn)
        except ConnectionError:
            pass  # the client reset the connection: the script's reads and writes end
        except asyncio.CancelledError:
            pass  # stopped by __aexit__: end as a finished handler (3.11 logs a cancelled one)
        except asyncio.IncompleteReadError as exc:
            self.problems.append(f"a request body cut short: {exc.partial!r}")
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            conn.close()


def http(status: str = "200 OK", *headers: str, body: bytes = b"") -> bytes:
    """An HTTP/1.1 answer with a Content-Length."""
    lines = "".join(f"{header}\r\n" for header in headers)
    return f"HTTP/1.1 {status}\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


def answering(*pieces: bytes, pause: float = 0.0) -> Script:
    """Answer every request with the same bytes (sent in ``pieces``), keeping the
    connection open."""

    async def script(conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.send(*pieces, pause=pause)

    return script


def echoing_after(gate: asyncio.Event, held: bytes, *headers: str) -> Script:
    """:func:`echoing`, except that a request whose body is ``held`` is answered only once
    ``gate`` is set."""

    async def script(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            if request.body == held:
                await gate.wait()
            await conn.send(http("200 OK", *headers, body=request.body))

    return script


def echoing(*headers: str) -> Script:
    """Answer every request 200 with its own body, keeping the connection alive."""

    async def script(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            await conn.send(http("200 OK", *headers, body=request.body))

    return script


async def eof(conn: Conn) -> None:
    """Wait until the client has closed ``conn`` (the script must be reading it)."""
    await asyncio.wait_for(conn.eof.wait(), PROMPT)


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http_client = HttpClient()
    yield http_client
    await http_client.close()


def the_pool(client: HttpClient, server: RawServer):  # -> the private _Pool
    """The client's pool for ``server`` (private: read only where a test's claim is about
    the pool's own accounting, which no server can see)."""
    return client._pools[("http", "127.0.0.1", server.port)]


# -- keep-alive and the pool ---------------------------------------------------------------


async def test_sequential_posts_share_one_kept_alive_connection(client: HttpClient) -> None:
    transports: list[object] = []  # kept, so that two connections never share an id()

    async def echo(request: web.Request) -> web.Response:
        transports.append(request.transport)
        return web.Response(body=await request.read(), headers={"X-Path": request.path_qs})

    runner, url = await serve("/{tail:.*}", echo)
    try:
        for n in range(50):
            answer = await client.post(f"{url}events/{n}?n={n}", {"X-N": str(n)}, b"e%d" % n)
            assert (answer.status, answer.body) == (200, b"e%d" % n)
            assert answer.headers["X-Path"] == f"/events/{n}?n={n}"
    finally:
        await runner.cleanup()
    assert len(transports) == 50
    assert len({id(transport) for transport in transports}) == 1


async def test_concurrent_posts_never_open_more_connections_than_the_limit() -> None:
    async def hold_then_echo(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            await asyncio.sleep(0.005)  # the server's own latency: requests queue in the pool
            await conn.send(http("200 OK", body=request.body))

    client = HttpClient(connections_per_host=4)
    async with RawServer(hold_then_echo) as server:
        try:
            bodies = [b"event %d" % n for n in range(100)]
            answers = await asyncio.gather(*(client.post(server.url, {}, b) for b in bodies))
        finally:
            await client.close()
    assert [answer.status for answer in answers] == [200] * 100
    assert [answer.body for answer in answers] == bodies  # each caller got its own answer
    assert sorted(server.bodies()) == sorted(bodies)  # each request sent once
    assert server.peak <= 4
    assert len(server.connections) == 4


async def test_pool_limit_holds_when_each_answer_closes_its_connection() -> None:
    """Workers post back to back and every answer says ``Connection: close``: a freed slot
    goes to a waiting request, and a worker that posts again at once must not take it
    as well (the pool would then hold more connections than its limit)."""

    async def answer_once_then_close(conn: Conn) -> None:
        request = await conn.request()
        if request is not None:
            await asyncio.sleep(0.005)  # the server's own latency
            await conn.send(http("200 OK", "Connection: close", body=request.body))
            conn.close()  # counted closed before the client can see the answer

    client = HttpClient(connections_per_host=2)

    async def worker(w: int) -> None:
        for n in range(5):
            body = f"{w}-{n}".encode()
            assert (await client.post(server.url, {}, body)).body == body

    async with RawServer(answer_once_then_close) as server:
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*(worker(w) for w in range(6)))
        finally:
            await client.close()
    assert len(server.requests) == 30
    assert server.peak <= 2, f"{server.peak} connections open at once with a limit of 2"


async def test_connection_idle_past_the_limit_is_not_reused(
    client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_client, "IDLE_SECONDS", 0.2)  # 15 s in the module
    async with RawServer(echoing()) as server:
        assert (await client.post(server.url, {}, b"1")).body == b"1"
        assert (await client.post(server.url, {}, b"2")).body == b"2"
        assert len(server.connections) == 1  # reused within the limit
        await asyncio.sleep(0.3)  # idle past the limit: the passing time is what is tested
        assert (await client.post(server.url, {}, b"3")).body == b"3"
        assert len(server.connections) == 2
        await eof(server.connections[0])  # the client closed the stale one
        assert the_pool(client, server)._open == 1
    assert server.bodies() == [b"1", b"2", b"3"]


# -- answer framings -----------------------------------------------------------------------

FRAMINGS = {
    "content-length": (
        [b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"],
        201,
        [("Content-Length", "5"), ("X-A", "1")],
        b"hello",
        True,
    ),
    "content-length, in pieces": (
        [b"HTTP/1.1 200 OK\r\nContent-", b"Length: 11\r\n\r\nhello", b" world"],
        200,
        [("Content-Length", "11")],
        b"hello world",
        True,
    ),
    "chunked, several chunks with extensions": (
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n",
            b"5\r\nhello\r\n",
            b"1;name=value\r\n,\r\n",
            b"6;flag\r\n world\r\n",
            b"0\r\n\r\n",
        ],
        200,
        [("Transfer-Encoding", "chunked"), ("X-A", "1")],
        b"hello, world",
        True,
    ),
    "chunked, one chunk per write": (
        [b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"]
        + [b"1\r\n%c\r\n" % c for c in b"abcdef"]
        + [b"0\r\n\r\n"],
        202,
        [("Transfer-Encoding", "chunked")],
        b"abcdef",
        True,
    ),
    "204 without a body": (
        [b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"],
        204,
        [("X-A", "1")],
        b"",
        True,
    ),
    "HTTP/1.0 with keep-alive": (
        [b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"],
        200,
        [("Connection", "keep-alive"), ("Content-Length", "2")],
        b"ok",
        True,
    ),
    "HTTP/1.0 without keep-alive": (  # the server keeps the socket open: the client closes it
        [b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        200,
        [("Content-Length", "2")],
        b"ok",
        False,
    ),
    "interim 100 and 103 first": (
        [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok",
        ],
        200,
        [("Content-Length", "2"), ("X-Final", "yes")],
        b"ok",
        True,
    ),
}


@pytest.mark.parametrize(
    ("pieces", "status", "headers", "body", "kept"), FRAMINGS.values(), ids=FRAMINGS.keys()
)
async def test_answer_framings(
    client: HttpClient,
    pieces: list[bytes],
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    kept: bool,
) -> None:
    async with RawServer(answering(*pieces, pause=0.001)) as server:
        for n in range(2):
            answer = await client.post(server.url, {}, b"request %d" % n)
            assert answer.status == status
            assert list(answer.headers.items()) == headers
            assert answer.body == body
        assert server.bodies() == [b"request 0", b"request 1"]
        if kept:
            assert len(server.connections) == 1
        else:  # not reused: the client closed it and opened another
            assert len(server.connections) == 2
            await eof(server.connections[0])


async def test_answer_read_to_the_end_of_the_connection(client: HttpClient) -> None:
    async def script(conn: Conn) -> None:
        if await conn.request() is not None:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\n"
            await conn.send(head, b"the body ", b"runs to ", b"the close", pause=0.001)
            conn.close()

    async with RawServer(script) as server:
        for _ in range(2):
            answer = await client.post(server.url, {}, b"x")
            assert answer.status == 200
            assert list(answer.headers.items()) == [("Content-Type", "text/plain"), ("X-A", "1")]
            assert answer.body == b"the body runs to the close"
        assert len(server.connections) == 2


async def test_body_to_the_close_under_a_transfer_coding_that_is_not_chunked(
    client: HttpClient,
) -> None:
    """RFC 9112 6.3: a response whose Transfer-Encoding does not end in chunked is read
    until the server closes the connection (the client does not decode it)."""

    async def script(conn: Conn) -> None:
        if await conn.request() is not None:
            await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", b"\x1f\x8bzz")
            conn.close()

    async with RawServer(script) as server:
        answer = await client.post(server.url, {}, b"x")
    assert (answer.status, answer.body) == (200, b"\x1f\x8bzz")


async def test_chunked_trailers_are_not_merged_into_the_answer_headers(
    client: HttpClient,
) -> None:
    """RFC 9110 6.5.1: a trailer field must not be merged into the header section (aiohttp,
    the client sinks used before, drops trailers)."""
    answer_bytes = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nce-specversion: 1.0\r\n\r\n"
    )

    async with RawServer(answering(answer_bytes)) as server:
        answer = await client.post(server.url, {}, b"x")
        assert (answer.status, answer.body) == (200, b"hello")
        again = await client.post(server.url, {}, b"y")  # the trailer ended the message
        assert (again.status, again.body) == (200, b"hello")
        assert len(server.connections) == 1
    assert list(answer.headers.items()) == [("Transfer-Encoding", "chunked"), ("X-A", "1")]


async def test_interim_answer_then_close_is_connection_lost(client: HttpClient) -> None:
    """A ``100 Continue`` is not the answer: when the server closes after it, the request
    got no answer (retriable), not an answer with status 100 (a sink would dead-letter)."""

    async def script(conn: Conn) -> None:
        if await conn.request() is not None:
            await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            conn.close()

    async with RawServer(script) as server:
        async with asyncio.timeout(PROMPT):
            with pytest.raises(ConnectionLost):
                answer = await client.post(server.url, {}, b"x")
                pytest.fail(f"an interim answer came back as the answer: {answer}")


# -- connections the server closes ---------------------------------------------------------


@pytest.mark.parametrize("server_closes", [True, False], ids=["server closes", "server keeps it"])
async def test_connection_close_answer_is_not_reused(
    client: HttpClient, server_closes: bool
) -> None:
    async def script(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            await conn.send(http("200 OK", "Connection: close", body=request.body))
            if server_closes:
                conn.close()
                return

    async with RawServer(script) as server:
        for n in range(3):
            answer = await client.post(server.url, {}, b"%d" % n)
            assert (answer.status, answer.body) == (200, b"%d" % n)
            assert answer.headers["Connection"] == "close"
        assert len(server.connections) == 3
        assert [len(conn.requests) for conn in server.connections] == [1, 1, 1]
        if not server_closes:  # the client closed each one after its answer
            for conn in server.connections:
                await eof(conn)


async def test_server_closing_after_each_answer_without_saying_so(client: HttpClient) -> None:
    async def script(conn: Conn) -> None:
        if (request := await conn.request()) is not None:
            await conn.send(http("200 OK", body=request.body))  # keep-alive, by HTTP/1.1
            conn.close()

    async with RawServer(script) as server:
        async with asyncio.timeout(5):
            for n in range(10):
                answer = await client.post(server.url, {}, b"%d" % n)
                assert (answer.status, answer.body) == (200, b"%d" % n)
    # Each request reached the server at least once. A duplicate is allowed (the client
    # re-sends a request that got no answer on a reused connection: at least once), but
    # here the server closed the old connection before the next request could be read
    # from it, so each arrives exactly once.
    for n in range(10):
        assert server.bodies().count(b"%d" % n) == 1


async def test_server_closing_an_idle_connection_after_a_delay(client: HttpClient) -> None:
    async def idle_timeout(conn: Conn) -> None:
        request = await conn.request()
        while request is not None:
            await conn.send(http("200 OK", body=request.body))
            try:
                async with asyncio.timeout(0.05):  # the server's keep-alive timeout
                    request = await conn.request()
            except TimeoutError:
                conn.close()
                return

    async with RawServer(idle_timeout) as server:
        assert (await client.post(server.url, {}, b"first")).body == b"first"
        await until(lambda: server.connections[0].closed, "the server closed it", PROMPT)
        async with asyncio.timeout(PROMPT):
            answer = await client.post(server.url, {}, b"second")
        assert (answer.status, answer.body) == (200, b"second")
        assert len(server.connections) == 2
    # at least once; a duplicate would be allowed, but the closed connection is never read
    assert server.bodies() == [b"first", b"second"]


async def test_request_lost_on_a_reused_connection_is_sent_again(client: HttpClient) -> None:
    """The server reads the second request on a connection and closes it without a word:
    the client re-sends it once, on a new connection."""

    async def answer_the_first_only(conn: Conn) -> None:
        if (request := await conn.request()) is not None:
            await conn.send(http("200 OK", body=request.body))
            await conn.request()  # read, never answered
            conn.close()

    async with RawServer(answer_the_first_only) as server:
        async with asyncio.timeout(PROMPT):
            assert (await client.post(server.url, {}, b"one")).body == b"one"
            assert (await client.post(server.url, {}, b"two")).body == b"two"
        assert len(server.connections) == 2
    # the duplicate "two" is the documented at-least-once: the server read it, then dropped
    # the connection, so the client cannot know it was read
    assert server.bodies() == [b"one", b"two", b"two"]


async def test_a_lost_request_is_sent_again_on_a_new_connection_not_another_pooled_one(
    client: HttpClient,
) -> None:
    """Four kept-alive connections are idle; the server drops each as the next request
    arrives on it. The module promises the request is "sent again on a new connection":
    it may arrive twice, not once per pooled connection."""
    four_in = asyncio.Event()

    async def answer_the_first_only(conn: Conn) -> None:
        if (request := await conn.request()) is not None:
            if len(conn.server.requests) == 4:
                four_in.set()
            await four_in.wait()  # all four held: four connections
            await conn.send(http("200 OK", body=request.body))
            await conn.request()  # read, never answered
            conn.close()

    async with RawServer(answer_the_first_only) as server:
        async with asyncio.timeout(PROMPT):
            await asyncio.gather(*(client.post(server.url, {}, b"%d" % n) for n in range(4)))
            assert len(server.connections) == 4
            answer = await client.post(server.url, {}, b"again")
        assert answer.body == b"again"
    received = server.bodies().count(b"again")
    assert 1 <= received <= 2, f"the request was received {received} times"


async def test_partial_answer_on_a_reused_connection_is_not_sent_again(
    client: HttpClient,
) -> None:
    """The server started answering, so it took the request: the loss is reported, and
    the request is not re-sent."""

    async def cut_the_second_answer(conn: Conn) -> None:
        if (request := await conn.request()) is not None:
            await conn.send(http("200 OK", body=request.body))
            if await conn.request() is not None:
                await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                conn.close()

    async with RawServer(cut_the_second_answer) as server:
        assert (await client.post(server.url, {}, b"one")).body == b"one"
        async with asyncio.timeout(PROMPT):
            with pytest.raises(ConnectionLost):
                await client.post(server.url, {}, b"two")
        assert server.bodies() == [b"one", b"two"]
        assert len(server.connections) == 1


@pytest.mark.parametrize("read_first", [True, False], ids=["after the request", "at once"])
async def test_fresh_connection_closed_without_an_answer(
    client: HttpClient, read_first: bool
) -> None:
    async def hang_up(conn: Conn) -> None:
        if read_first:
            await conn.request()
        conn.close()

    async with RawServer(hang_up) as server:
        async with asyncio.timeout(PROMPT):  # a retry loop would time out here
            with pytest.raises(ConnectionLost) as caught:
                await client.post(server.url, {}, b"x")
        assert isinstance(caught.value, HttpError)
        assert len(server.connections) == 1  # a fresh connection is not retried


# -- timeouts, refusals and bad input ------------------------------------------------------


async def test_timeout_closes_the_connection_and_leaves_the_client_usable(
    client: HttpClient,
) -> None:
    answering = False

    async def silent_until_told(conn: Conn) -> None:
        while (request := await conn.request()) is not None:
            if answering:
                await conn.send(http("200 OK", body=request.body))
            # else: never answer, keep reading (an EOF ends the loop)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    runner, good_url = await serve("/", echo)
    try:
        async with RawServer(silent_until_told) as server:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await client.post(server.url, {}, b"lost")
            assert time.monotonic() - started < 1.0
            # the cancelled request's connection was closed, not pooled
            await eof(server.connections[0])
            assert (await client.post(good_url, {}, b"elsewhere")).body == b"elsewhere"
            answering = True
            async with asyncio.timeout(PROMPT):
                answer = await client.post(server.url, {}, b"again")
            assert (answer.status, answer.body) == (200, b"again")
            assert len(server.connections) == 2
            assert server.bodies() == [b"lost", b"again"]
    finally:
        await runner.cleanup()


async def test_connection_refused(client: HttpClient) -> None:
    port = free_port()  # bound, then released: nothing listens there
    with pytest.raises(CannotConnect, match=f"127.0.0.1:{port}") as caught:
        await client.post(f"http://127.0.0.1:{port}/sink", {}, b"x")
    assert isinstance(caught.value, HttpError)


LINE_BREAKS = [
    {"X-Injected": "a\r\nX-Evil: 1"},
    {"X-A": "a\nX-Evil: 1"},
    {"X-A": "a\rX-Evil: 1"},
    {"X-A": "ends in a line break\r\n"},
    {"X-A\r\nX-Evil": "1"},
    {"X-Evil\n": "1"},
    {"X-Evil\r": "1"},
    {"X-Fine": "fine", "X-Evil": "\r"},
    {"X-Evil": "\r\n\r\nPOST /evil HTTP/1.1\r\n"},
]


@pytest.mark.parametrize("headers", LINE_BREAKS, ids=[repr(h) for h in LINE_BREAKS])
async def test_line_break_in_a_header_is_refused_before_anything_is_sent(
    client: HttpClient, headers: dict[str, str]
) -> None:
    async with RawServer(echoing()) as server:
        with pytest.raises(BadRequest) as caught:  # no pooled connection yet
            await client.post(server.url, headers, b"evil")
        assert isinstance(caught.value, ValueError)
        assert (await client.post(server.url, {}, b"good")).body == b"good"
        with pytest.raises(BadRequest):  # a kept-alive connection is idle in the pool
            await client.post(server.url, headers, b"evil")
        assert (await client.post(server.url, {}, b"good again")).body == b"good again"
        assert len(server.connections) == 1  # no connection was opened for the bad ones
    assert server.bodies() == [b"good", b"good again"]
    assert not any(b"Evil" in request.head for request in server.requests)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/file",
        "ws://127.0.0.1:8080/socket",
        "unix:///run/sink.sock",
        "mailto:sink@example.com",
        "http://",
        "http:///no-host",
        "https://",
        "/relative/path",
        "127.0.0.1:8080/sink",
        "",
    ],
)
async def test_url_that_is_not_http_with_a_host(client: HttpClient, url: str) -> None:
    with pytest.raises(BadRequest):
        await client.post(url, {}, b"x")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:99999/sink", "http://127.0.0.1:port/sink", "http://[::1/sink"],
)
async def test_malformed_url_is_a_bad_request(client: HttpClient, url: str) -> None:
    """The module's contract: a URL that cannot be used is BadRequest (the sink client
    catches BadRequest, HttpError and TimeoutError, nothing else)."""
    with pytest.raises(BadRequest):
        await client.post(url, {}, b"x")


# -- what goes on the wire, what comes back ------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "target"),
    [
        ("", "/"),
        ("?x=1", "/?x=1"),
        ("/a%2Fb/c%20d?x=1&y=a%2Bb", "/a%2Fb/c%20d?x=1&y=a%2Bb"),
        (
            "/events/%E2%82%AC;v=1/~x?q=%26%3D&flag#fragment",
            "/events/%E2%82%AC;v=1/~x?q=%26%3D&flag",
        ),
    ],
)
async def test_request_bytes_on_the_wire(client: HttpClient, tail: str, target: str) -> None:
    headers = {
        "Content-Type": "application/cloudevents+json",
        "ce-id": "1",
        "x-lower-case": "kept as given",
        "X-Spaces": "a  b\tc",
        "X-Empty": "",
        "X-Unicode": "caf\u00e9",
    }
    body = bytes(range(256)) + b"\r\n\r\nPOST / HTTP/1.1\r\n"  # binary, and text like HTTP
    async with RawServer(echoing()) as server:
        answer = await client.post(f"http://127.0.0.1:{server.port}{tail}", headers, body)
        assert answer.body == body
        await client.close()  # the server sees EOF, and no stray byte after the body
        await eof(server.connections[0])
    (request,) = server.requests
    assert request.line == f"POST {target} HTTP/1.1"
    sent = request.headers
    assert [value for name, value in sent if name == "Host"] == [f"127.0.0.1:{server.port}"]
    assert [value for name, value in sent if name == "Content-Length"] == [str(len(body))]
    own = {"Host", "Content-Length", "User-Agent"}
    caller = [(name, value) for name, value in sent if name not in own]
    assert caller == list(headers.items())  # as given: names' case, order and values
    assert "X-Unicode: caf\u00e9\r\n".encode() in request.head  # UTF-8 on the wire
    assert request.body == body


async def test_empty_body_sends_content_length_zero(client: HttpClient) -> None:
    async with RawServer(echoing()) as server:
        answer = await client.post(server.url, {}, b"")
    assert (answer.status, answer.body) == (200, b"")
    (request,) = server.requests
    assert ("Content-Length", "0") in request.headers
    assert request.body == b""


async def test_answer_headers_are_case_insensitive_and_keep_repeats(client: HttpClient) -> None:
    answer_bytes = (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing: v\r\nset-cookie: b=2\r\n"
        b"SET-COOKIE: c=3\r\nContent-Length: 0\r\n\r\n"
    )

    async with RawServer(answering(answer_bytes)) as server:
        answer = await client.post(server.url, {}, b"x")
    assert isinstance(answer, HttpAnswer)
    assert isinstance(answer.headers, CIMultiDictProxy)
    assert answer.headers.getall("set-cookie") == ["a=1", "b=2", "c=3"]
    assert answer.headers.getall("SET-COOKIE") == ["a=1", "b=2", "c=3"]
    assert answer.headers["x-thing"] == answer.headers["X-THING"] == "v"
    assert "x-missing" not in answer.headers


GARBAGE = {
    "ssh banner": b"SSH-2.0-OpenSSH_9.6\r\n",
    "tls record": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32),
    "bad content-length": b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
    "bad status": b"HTTP/1.1 2x0 OK\r\n\r\n",
    "header without a colon": b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_answer_is_bad_answer(client: HttpClient, garbage: bytes) -> None:
    async def script(conn: Conn) -> None:
        if await conn.request() is not None:
            await conn.send(garbage)  # and keep the connection open: no EOF to lean on
            await conn.request()

    async with RawServer(script) as server:
        async with asyncio.timeout(PROMPT):
            with pytest.raises(BadAnswer) as caught:
                await client.post(server.url, {}, b"x")
        assert isinstance(caught.value, HttpError)
        await eof(server.connections[0])  # the client dropped the connection
        assert len(server.requests) == 1  # and did not send it again


# -- TLS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path
    pem: str


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fnevents test sink")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(folder / "cert.pem", folder / "key.pem", pem.decode())


@pytest.fixture
async def https_url(certificate: Certificate) -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), headers={"X-Scheme": request.scheme})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}/sink"
    await runner.cleanup()


async def test_https_with_a_trusted_certificate(certificate: Certificate, https_url: str) -> None:
    client = HttpClient(ssl_context=ssl.create_default_context(cadata=certificate.pem))
    try:
        for n in range(3):
            answer = await client.post(https_url, {"X-N": str(n)}, b"secret %d" % n)
            assert (answer.status, answer.body) == (200, b"secret %d" % n)
            assert answer.headers["X-Scheme"] == "https"
    finally:
        await client.close()


async def test_https_with_an_untrusted_certificate(client: HttpClient, https_url: str) -> None:
    with pytest.raises(CannotConnect) as caught:
        await client.post(https_url, {}, b"secret")
    message = str(caught.value)
    assert "certificate verify failed" in message.lower(), message
    assert https_url.split("/")[2] in message  # host:port


# -- close() -------------------------------------------------------------------------------


async def test_close_closes_idle_connections_and_in_use_ones_after_their_answer(
    client: HttpClient,
) -> None:
    gate = asyncio.Event()

    async with RawServer(echoing_after(gate, b"held")) as server:
        # three requests at once open three connections, then idle in the pool
        await asyncio.gather(*(client.post(server.url, {}, b"%d" % n) for n in range(3)))
        assert len(server.connections) == 3
        held = asyncio.create_task(client.post(server.url, {}, b"held"))
        await until(lambda: b"held" in server.bodies(), "the held request arrived", PROMPT)
        (in_use,) = [c for c in server.connections if c.requests[-1].body == b"held"]
        idle = [conn for conn in server.connections if conn is not in_use]

        await client.close()
        for conn in idle:
            await eof(conn)
        gate.set()
        assert (await held).body == b"held"
        await eof(in_use)  # closed after its answer rather than pooled

        answer = await client.post(server.url, {}, b"after close")
        assert (answer.status, answer.body) == (200, b"after close")
        assert (await client.post(server.url, {}, b"pooled again")).body == b"pooled again"
        assert len(server.connections) == 4  # one new connection, kept alive as before


# -- cancellation while waiting for a pooled connection ------------------------------------


async def test_cancelled_waiter_leaves_the_pool_whole() -> None:
    gate = asyncio.Event()

    client = HttpClient(connections_per_host=1)
    async with RawServer(echoing_after(gate, b"first")) as server:
        try:
            first = asyncio.create_task(client.post(server.url, {}, b"first"))
            await until(lambda: server.requests, "the first request arrived", PROMPT)
            pool = the_pool(client, server)
            second = asyncio.create_task(client.post(server.url, {}, b"second"))
            await until(lambda: len(pool._waiting) == 1, "the second one waits", PROMPT)
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            gate.set()
            assert (await first).body == b"first"
            async with asyncio.timeout(PROMPT):
                third = await client.post(server.url, {}, b"third")
            assert third.body == b"third"
            assert pool._open == 1  # its one connection, idle; not more than the limit
        finally:
            await client.close()
    assert server.bodies() == [b"first", b"third"]  # the cancelled one was never sent
    assert len(server.connections) == 1


@pytest.mark.parametrize("kept", [True, False], ids=["connection handed", "slot handed"])
async def test_waiter_cancelled_as_it_is_handed_the_connection(kept: bool) -> None:
    """The first request's answer hands the pool's one connection (or, after
    ``Connection: close``, its slot) to the second request, and is cancelled in the same
    step, before the second runs: the hand-over goes on to the third request."""
    gate = asyncio.Event()
    close = () if kept else ("Connection: close",)

    client = HttpClient(connections_per_host=1)
    tasks: dict[str, asyncio.Task[HttpAnswer]] = {}

    async def first_then_cancel_the_second() -> HttpAnswer:
        answer = await client.post(server.url, {}, b"first")
        tasks["second"].cancel()  # it was just handed the connection, and has not run
        return answer

    async with RawServer(echoing_after(gate, b"first", *close)) as server:
        try:
            first = asyncio.create_task(first_then_cancel_the_second())
            await until(lambda: server.requests, "the first request arrived", PROMPT)
            pool = the_pool(client, server)
            for name in ("second", "third"):
                tasks[name] = asyncio.create_task(client.post(server.url, {}, name.encode()))
            await until(lambda: len(pool._waiting) == 2, "two requests wait", PROMPT)
            gate.set()
            assert (await first).body == b"first"
            with pytest.raises(asyncio.CancelledError):
                await tasks["second"]
            async with asyncio.timeout(PROMPT):
                assert (await tasks["third"]).body == b"third"
                assert (await client.post(server.url, {}, b"fourth")).body == b"fourth"
            assert pool._open == (1 if kept else 0)
        finally:
            await client.close()
    assert server.bodies() == [b"first", b"third", b"fourth"]
    assert server.peak == 1
    assert len(server.connections) == (1 if kept else 3)


# -- differential: the same requests through aiohttp's client ------------------------------

DIFFERENTIAL_CASES = 2000
UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;=:@"
# bytes yarl keeps percent-encoded as they are (it decodes the ones above)
ENCODED = [b for b in range(256) if chr(b) not in UNRESERVED + SUB_DELIMS + "/?#[]"]
TOKEN = string.ascii_letters + string.digits + "-"
VALUE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class Case:
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes
    status: int
    answer_headers: list[tuple[str, str]]
    answer_body: bytes


def _text(rng: random.Random, chars: str, longest: int) -> str:
    out = []
    for _ in range(rng.randrange(longest + 1)):
        if rng.random() < 0.1:
            out.append(f"%{rng.choice(ENCODED):02X}")
        else:
            out.append(rng.choice(chars))
    return "".join(out)


def _value(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return ""
    words = [
        "".join(rng.choices(VALUE, k=rng.randrange(1, 12))) for _ in range(rng.randrange(1, 4))
    ]
    return " ".join(words)


def _segment(rng: random.Random) -> str:
    while (segment := _text(rng, UNRESERVED + SUB_DELIMS, 8)) in (".", ".."):
        pass  # dot segments are resolved away by any URL parser
    return segment


def make_case(rng: random.Random) -> Case:
    segments = [_segment(rng) for _ in range(rng.randrange(5))]
    target = "/" + "/".join(segments)
    if rng.random() < 0.5:
        pairs = [
            f"{_text(rng, UNRESERVED, 5)}={_text(rng, UNRESERVED + '!$()*,;:@/?', 8)}"
            for _ in range(rng.randrange(1, 4))
        ]
        target += "?" + "&".join(pairs)
    headers: dict[str, str] = {}
    for _ in range(rng.randrange(9)):
        name = "X-" + "".join(rng.choices(TOKEN, k=rng.randrange(1, 16)))
        if name.lower() not in {n.lower() for n in headers}:
            headers[name] = _value(rng)
    if rng.random() < 0.3:
        headers["Content-Type"] = rng.choice(["application/json", "text/plain; charset=utf-8"])
    body = rng.randbytes(rng.choice([0, rng.randrange(1, 100), rng.randrange(5001)]))
    answer_headers = []
    for _ in range(rng.randrange(6)):
        name = "X-R-" + "".join(rng.choices(TOKEN, k=rng.randrange(1, 10)))
        answer_headers += [(name, _value(rng)) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    status = rng.randrange(200, 600)
    answer_body = rng.randbytes(rng.choice([0, rng.randrange(1, 100), rng.randrange(5001)]))
    return Case(target, headers, body, status, answer_headers, answer_body)


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    body: bytes
    headers: CIMultiDictProxy[str]


async def test_differential_against_aiohttp_client(client: HttpClient) -> None:
    rng = random.Random(20240611)
    cases = [make_case(rng) for _ in range(DIFFERENTIAL_CASES)]
    seen: dict[tuple[str, int], Seen] = {}

    async def echo(request: web.Request) -> web.Response:
        index = int(request.headers["X-Case"])
        seen[request.headers["X-Client"], index] = Seen(
            request.method, request.raw_path, await request.read(), request.headers
        )
        case = cases[index]
        headers = CIMultiDict(case.answer_headers)
        return web.Response(status=case.status, body=case.answer_body, headers=headers)

    # aiohttp's low-level server: every request reaches ``echo``, whatever its path
    runner = web.ServerRunner(web.Server(echo), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    mismatches: list[str] = []
    limit = asyncio.Semaphore(16)
    session = aiohttp.ClientSession(
        auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False
    )

    def differ(index: int, what: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            mismatches.append(f"case {index}: {what}: ours {ours!r}, aiohttp {theirs!r}")

    async def one(index: int, case: Case) -> None:
        tagged = {"X-Case": str(index)}
        async with limit:
            ours = await client.post(
                base + case.target, {**case.headers, **tagged, "X-Client": "ours"}, case.body
            )
            async with session.post(
                base + case.target,
                data=case.body,
                headers={**case.headers, **tagged, "X-Client": "aiohttp"},
            ) as response:
                theirs = HttpAnswer(response.status, response.headers, await response.read())
        expected_body = b"" if case.status in (204, 304) else case.answer_body
        if case.status >= 300:  # of an error answer only its start is kept
            theirs = theirs._replace(body=theirs.body[: http_client.ERROR_BODY_BYTES])
            expected_body = expected_body[: http_client.ERROR_BODY_BYTES]
        differ(index, "status", ours.status, theirs.status)
        differ(index, "answer body", ours.body, theirs.body)
        for name in {name for name, _ in case.answer_headers}:
            differ(index, name, ours.headers.getall(name, []), theirs.headers.getall(name, []))
        differ(index, "answer body as sent", ours.body, expected_body)
        differ(index, "status as sent", ours.status, case.status)
        for name, value in case.answer_headers:
            differ(index, f"{name} as sent", value in ours.headers.getall(name, []), True)
        by_us, by_them = seen["ours", index], seen["aiohttp", index]
        for what in ("method", "target", "body"):
            differ(index, f"server saw {what}", getattr(by_us, what), getattr(by_them, what))
        differ(index, "server saw target as sent", by_us.target, case.target)
        differ(index, "server saw body as sent", by_us.body, case.body)
        differ(index, "server saw method", by_us.method, "POST")
        for name, value in case.headers.items():
            got = by_us.headers.getall(name, [])
            differ(index, f"server saw {name}", got, by_them.headers.getall(name, []))
            differ(index, f"server saw {name} as sent", got, [value])

    try:
        await asyncio.gather(*(one(index, case) for index, case in enumerate(cases)))
    finally:
        await session.close()
        await runner.cleanup()
    assert len(seen) == 2 * DIFFERENTIAL_CASES
    assert not mismatches, f"{len(mismatches)} mismatches, the first: {mismatches[:10]}"


# -- after review: error answers, odd bytes, odd URLs ---------------------------------------


async def test_an_error_answer_keeps_its_start_and_does_not_wait_for_the_rest(
    client: HttpClient,
) -> None:
    start = b"x" * 5_000

    async def huge_error(conn: Conn) -> None:
        await conn.request()
        await conn.send(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 300000000\r\n\r\n" + start
        )
        await conn.request()  # the rest never comes; this returns at the client's EOF

    async with RawServer(huge_error) as server:
        answer = await asyncio.wait_for(client.post(server.url, {}, b"e"), PROMPT)
        assert answer.status == 500
        assert answer.body == start[: http_client.ERROR_BODY_BYTES]
        await eof(server.connections[0])  # not pooled with 299,995,000 bytes still to come


async def test_a_2xx_answer_larger_than_the_limit_is_a_bad_answer(
    client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_client, "MAX_BODY", 1_000)
    async with RawServer(echoing()) as server:
        assert (await client.post(server.url, {}, b"y" * 1_000)).body == b"y" * 1_000
        with pytest.raises(BadAnswer, match="larger than 1,000 bytes"):
            await client.post(server.url, {}, b"y" * 1_001)


async def test_user_and_password_in_the_url_become_basic_auth(client: HttpClient) -> None:
    async with RawServer(echoing()) as server:
        url = f"http://fn%40acme:p%3Ass@127.0.0.1:{server.port}/in"
        assert (await client.post(url, {}, b"e")).status == 200
        headers = dict(server.requests[0].headers)
        assert headers["Authorization"] == "Basic " + base64.b64encode(b"fn@acme:p:ss").decode()
        assert headers["Host"] == f"127.0.0.1:{server.port}"


async def test_bytes_on_an_idle_connection_never_start_the_next_answer(
    client: HttpClient,
) -> None:
    async def stray_then_refuse(conn: Conn) -> None:
        if len(conn.server.connections) == 1:  # the first: answer, then stray bytes while idle
            await conn.request()
            await conn.send(http("200 OK"))
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        while await conn.request() is not None:
            await conn.send(http("503 Service Unavailable", body=b"busy"))

    async with RawServer(stray_then_refuse) as server:
        assert (await client.post(server.url, {}, b"1")).status == 200
        await eof(server.connections[0])  # the stray bytes closed it
        answer = await client.post(server.url, {}, b"2")
        assert (answer.status, answer.body) == (503, b"busy")  # not the stray 200


async def test_switching_protocols_is_a_bad_answer(client: HttpClient) -> None:
    async def upgrade(conn: Conn) -> None:
        await conn.request()
        await conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"
        )
        await conn.request()

    async with RawServer(upgrade) as server:
        with pytest.raises(BadAnswer, match="switched protocols"):
            await client.post(server.url, {}, b"e")


@pytest.mark.parametrize(
    ("url", "where"),
    [("http://127.0.0.1:0/", "127.0.0.1:0"), (f"http://{'a' * 64}.example/", "a" * 64)],
    ids=["port 0 is not port 80", "a host name IDNA refuses"],
)
async def test_hosts_that_cannot_be_reached_say_so(
    client: HttpClient, url: str, where: str
) -> None:
    with pytest.raises(CannotConnect, match=f"cannot connect to {where}"):
        await client.post(url, {}, b"e")


async def test_a_sink_timeout_of_zero_sets_no_limit() -> None:
    async def slow(conn: Conn) -> None:
        await conn.request()
        await asyncio.sleep(0.1)
        await conn.send(http("204 No Content"))
        await conn.request()

    sinks = SinkClient()
    try:
        async with RawServer(slow) as server:
            event = CloudEvent.create("t", "/s", {"n": 1})
            assert await sinks.post(server.url, event, seconds=0) is None  # delivered
    finally:
        await sinks.close()
