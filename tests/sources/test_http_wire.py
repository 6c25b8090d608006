"""What a client sees on the wire of the HTTP ingest, from raw sockets only.

Keep-alive, pipelining, closing, bodies in pieces, chunked bodies, ``Expect:
100-continue``, the body and header limits, a client that goes away mid-body, many
clients at once, and that every answer is JSON framed by an exact Content-Length.
These held for aiohttp's server and hold for :mod:`sources.http_server`, which replaced
it; the last section pins down where the two differ, each a choice made on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import orjson
import pytest

from sources import http_server
from tests.helpers import nothing_within
from tests.sources.test_http_source import CE_HEADERS, Answer, Ingest, exchange, request

#: How long a client waits for one answer; only a failing test waits that long.
ANSWER_TIMEOUT = 3.0
#: The gap between two writes of a request sent in pieces: long enough for the server to
#: read each piece on its own (the scenario, not a wait for a result).
GAP = 0.01
JSON = b"Content-Type: application/json"
MAX_BODY = 2048  # Ingest's default maxBodyBytes
#: Headers an answer must not send twice: they say where it ends and what it is.
FRAMING = ("content-length", "content-type", "transfer-encoding")


@contextlib.asynccontextmanager
async def within(timeout: float, what: str) -> AsyncIterator[None]:
    """An AssertionError naming ``what`` if the block takes longer than ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout:g}s") from None


class Client:
    """One client connection on a raw socket: send bytes, read answers one at a time.

    :meth:`answer` takes exactly ``Content-Length`` bytes of body, so an answer whose
    Content-Length is wrong shows up as a body that is not JSON, as garbage where the
    next status line should be, or as bytes before the end of the connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()

    async def send(self, *pieces: bytes, gap: float = 0.0) -> None:
        """Each piece in its own write, ``gap`` seconds apart."""
        for n, piece in enumerate(pieces):
            if n and gap:
                await asyncio.sleep(gap)
            await self.loop.sock_sendall(self.sock, piece)

    async def answer(self, timeout: float = ANSWER_TIMEOUT) -> Answer:
        """The next answer, an interim (1xx) one included, with its body."""
        async with within(timeout, "an answer"):
            head = await self._through(b"\r\n\r\n")
            status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
            version, status, *_ = status_line.split(" ")
            assert version in ("HTTP/1.0", "HTTP/1.1"), status_line
            headers: dict[str, str] = {}
            for line in lines:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                assert name not in headers or name not in FRAMING, f"two {name}: {head!r}"
                headers[name] = value.strip()
            if 100 <= int(status) < 200:
                return Answer(int(status), headers, b"")
            assert "transfer-encoding" not in headers, head
            assert "content-length" in headers, f"an answer without Content-Length: {head!r}"
            body = await self._exactly(int(headers["content-length"]))
        return Answer(int(status), headers, body)

    async def closed(self, timeout: float = ANSWER_TIMEOUT) -> None:
        """Assert that the server closes the connection and sent nothing more."""
        assert not self.buffer, f"bytes past the last answer: {bytes(self.buffer)!r}"
        async with within(timeout, "the server closes the connection"):
            try:
                more = await self.loop.sock_recv(self.sock, 65536)
            except ConnectionResetError:  # closed with bytes of ours unread: closed too
                return
        assert more == b"", f"bytes past the last answer: {more!r}"

    async def _fill(self) -> None:
        data = await self.loop.sock_recv(self.sock, 65536)
        assert data, f"the server closed the connection mid-answer: {bytes(self.buffer)!r}"
        self.buffer += data

    async def _through(self, separator: bytes) -> bytes:
        while (end := self.buffer.find(separator)) < 0:
            await self._fill()
        return self._take(end + len(separator))

    async def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._fill()
        return self._take(size)

    def _take(self, size: int) -> bytes:
        taken = bytes(self.buffer[:size])
        del self.buffer[:size]
        return taken


@contextlib.asynccontextmanager
async def connected(port: int) -> AsyncIterator[Client]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each write its own segment
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        yield Client(sock)
    finally:
        sock.close()


def post(
    body: bytes,
    headers: list[bytes] = (),
    key: str | None = None,
    close: bool = False,
    version: bytes = b"HTTP/1.1",
) -> bytes:
    """A POST of JSON ``body`` to /readings, kept alive unless ``close``; ``key`` is the
    Idempotency-Key, which names the event ``http:<key>``."""
    lines = [b"POST /readings " + version, b"Host: 127.0.0.1", JSON, *headers]
    if key is not None:
        lines.append(b"Idempotency-Key: " + key.encode())
    lines.append(b"Content-Length: %d" % len(body))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def head(headers: list[bytes], length: int) -> bytes:
    """The header section of a POST to /readings whose body is sent apart."""
    lines = [b"POST /readings HTTP/1.1", b"Host: 127.0.0.1", *headers]
    return b"\r\n".join([*lines, b"Content-Length: %d" % length]) + b"\r\n\r\n"


def chunked_head(close: bool = False, headers: list[bytes] = ()) -> bytes:
    """The header section of a POST of JSON in chunked transfer coding."""
    lines = [b"POST /readings HTTP/1.1", b"Host: 127.0.0.1", JSON, *headers]
    lines.append(b"Transfer-Encoding: chunked")
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def frame(chunk: bytes, extension: bytes = b"") -> bytes:
    """One chunk of a chunked body (``extension`` as ``;name=value``)."""
    return b"%x%s\r\n%s\r\n" % (len(chunk), extension, chunk)


def last_chunk(trailers: list[bytes] = ()) -> bytes:
    return b"0\r\n" + b"".join(trailer + b"\r\n" for trailer in trailers) + b"\r\n"


def chunked(chunks: list[bytes], close: bool = False, headers: list[bytes] = ()) -> bytes:
    """A POST of JSON whose body is ``chunks`` in chunked transfer coding."""
    return chunked_head(close, headers) + b"".join(map(frame, chunks)) + last_chunk()


def accepted(answer: Answer, *ids: str) -> None:
    """Assert a 200 in JSON that names ``ids``."""
    assert answer.status == 200, answer
    assert answer.json() == {"accepted": len(ids), "ids": list(ids)}, answer


def refused(answer: Answer, status: int, words: str = "") -> None:
    """Assert a ``status`` in JSON whose reason holds ``words``."""
    assert answer.status == status, answer
    assert words in answer.reason(), answer


def published(ingest: Ingest) -> float:
    return ingest.counter("published")


# -- one connection, many requests ----------------------------------------------------------


async def test_keep_alive_answers_each_request_in_turn_on_one_connection(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        for n in range(5):
            await client.send(post(b'{"n": %d}' % n, key=f"k{n}"))
            answer = await client.answer()
            accepted(answer, f"http:k{n}")
            assert answer.headers.get("connection", "").lower() != "close", answer
        events = [await ingest.next() for _ in range(5)]
        assert published(ingest) == 5
    assert [(e.id, e.data) for e in events] == [(f"http:k{n}", {"n": n}) for n in range(5)]


async def test_pipelined_requests_in_one_write_are_answered_in_order(tmp_path) -> None:
    binary = head([*CE_HEADERS, JSON], 8) + b'{"n": 1}'  # a CloudEvent in binary mode
    pipeline = [
        post(b'{"n": 0}', key="p0"),
        binary,  # id r-1
        chunked([b'{"n"', b": 2}"]),
        post(b'{"n": 3}', key="p3", close=True),
    ]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(b"".join(pipeline))
        answers = [await client.answer() for _ in pipeline]
        await client.closed()
        events = [await ingest.next() for _ in pipeline]
    for answer, name in zip(answers, ["http:p0", "r-1", None, "http:p3"], strict=True):
        if name is None:  # the chunked one: no key, its id is a hash of the body
            assert answer.status == 200 and answer.json()["accepted"] == 1, answer
        else:
            accepted(answer, name)
    assert answers[2].json()["ids"] == [events[2].id]
    assert [e.data for e in events] == [{"n": n} for n in range(4)]


async def test_refusals_inside_a_pipeline_leave_the_requests_around_them_alone(tmp_path) -> None:
    pipeline = [
        post(b'{"n": 0}', key="q0"),
        b'POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{"n": 9}',
        b"GET /readings HTTP/1.1\r\nHost: x\r\n\r\n",
        post(b"{not json", key="bad"),
        post(b'{"n": 4}', key="q4", close=True),
    ]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(b"".join(pipeline))
        answers = [await client.answer() for _ in pipeline]
        await client.closed()
        events = [await ingest.next(), await ingest.next()]
        letter = await ingest.next(ingest.dead)
        assert published(ingest) == 2
    accepted(answers[0], "http:q0")
    refused(answers[1], 404, "/elsewhere")
    refused(answers[2], 405, "'GET'")
    assert answers[2].headers["allow"] == "POST"
    refused(answers[3], 400, "not valid JSON")
    accepted(answers[4], "http:q4")
    assert [e.data for e in events] == [{"n": 0}, {"n": 4}]
    assert letter.data == b"{not json"


# -- who closes the connection ----------------------------------------------------------------


async def test_connection_close_is_answered_then_closed(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', key="c1", close=True))
        accepted(await client.answer(), "http:c1")
        await client.closed()
        assert (await ingest.next()).data == {"n": 1}


async def test_http10_without_keep_alive_is_answered_then_closed(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', key="old", version=b"HTTP/1.0"))
        accepted(await client.answer(), "http:old")
        await client.closed()
        assert (await ingest.next()).data == {"n": 1}


async def test_http10_with_keep_alive_takes_a_second_request(tmp_path) -> None:
    keep = [b"Connection: keep-alive"]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', keep, key="ka1", version=b"HTTP/1.0"))
        first = await client.answer()
        await client.send(post(b'{"n": 2}', key="ka2", version=b"HTTP/1.0"))
        second = await client.answer()
        await client.closed()  # the second asked for no keep-alive
        events = [await ingest.next(), await ingest.next()]
    accepted(first, "http:ka1")
    # an HTTP/1.0 client keeps the connection only when the answer says so
    assert first.headers["connection"].lower() == "keep-alive", first
    accepted(second, "http:ka2")
    assert [e.data for e in events] == [{"n": 1}, {"n": 2}]


# -- a request that arrives in pieces -----------------------------------------------------------


async def test_a_body_in_several_writes_is_taken_whole(tmp_path) -> None:
    body = b'{"vehicle": "v7", "speed": 91.5, "note": "' + b"x" * 500 + b'"}'
    message = post(body, key="pieces")
    split = message.index(b"\r\n\r\n") + 4
    pieces = [message[:split], body[:3], body[3:40], body[40:300], body[300:]]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(*pieces, gap=GAP)
        accepted(await client.answer(), "http:pieces")
        event = await ingest.next()
    assert event.data == orjson.loads(body)


async def test_headers_split_mid_line_are_read_whole(tmp_path) -> None:
    message = post(b'{"n": 1}', key="split-head", close=True)
    cuts = [4, 20, message.index(b"Idempotency") + 5, message.index(b"\r\n\r\n") + 1]
    cuts.append(message.index(b"\r\n\r\n") + 3)  # between the CR and LF of the blank line
    pieces = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
    assert b"".join(pieces) == message
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(*pieces, gap=GAP)
        accepted(await client.answer(), "http:split-head")
        await client.closed()
        assert (await ingest.next()).data == {"n": 1}


async def test_a_request_one_byte_at_a_time_is_taken(tmp_path) -> None:
    message = post(b'{"n": 1}', key="b", close=True)
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(*(message[n : n + 1] for n in range(len(message))), gap=0.001)
        accepted(await client.answer(), "http:b")
        await client.closed()
        assert (await ingest.next()).data == {"n": 1}


# -- chunked request bodies ---------------------------------------------------------------------


async def test_a_body_in_several_chunks_is_one_request_and_one_event(tmp_path) -> None:
    chunks = [b'{"vehi', b'cle": "v7", ', b'"speed": 9', b"1.5}"]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        # the header section, then each chunk in a write of its own
        await client.send(chunked_head(close=True), *map(frame, chunks), last_chunk(), gap=GAP)
        answer = await client.answer()
        await client.closed()
        event = await ingest.next()
        assert published(ingest) == 1
    accepted(answer, event.id)
    assert event.data == {"vehicle": "v7", "speed": 91.5}


async def test_chunk_extensions_and_trailers_are_read_past(tmp_path) -> None:
    message = (
        chunked_head()
        + frame(b'{"n": ', b";ext=1")
        + frame(b"1}", b';name="quoted; value";flag')
        + last_chunk([b"X-Checksum: abc", b"X-Other: 2"])
    )
    following = post(b'{"n": 2}', key="after", close=True)
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(message + following)  # the next request right behind the trailers
        first, second = await client.answer(), await client.answer()
        await client.closed()
        events = [await ingest.next(), await ingest.next()]
    accepted(first, events[0].id)
    accepted(second, "http:after")
    assert [e.data for e in events] == [{"n": 1}, {"n": 2}]


async def test_a_chunked_body_past_max_body_gets_413(tmp_path) -> None:
    body = b'{"x": "' + b"a" * (MAX_BODY + 1000) + b'"}'
    chunks = [body[n : n + 1024] for n in range(0, len(body), 1024)]
    async with Ingest(tmp_path) as ingest:
        async with connected(ingest.port) as client:
            await client.send(chunked(chunks, close=True))
            answer = await client.answer()
            await client.closed()
        following = await exchange(ingest.port, request(headers=[JSON], body=b'{"n": 1}'))
        event = await ingest.next()
        assert published(ingest) == 1
    refused(answer, 413, f"maxBodyBytes ({MAX_BODY})")
    assert following.status == 200 and following.json()["ids"] == [event.id], following
    assert event.data == {"n": 1}


# -- Expect: 100-continue -------------------------------------------------------------------------


async def test_100_continue_comes_before_the_body_is_sent(tmp_path) -> None:
    body = b'{"n": 100}'
    ask = [JSON, b"Expect: 100-continue", b"Idempotency-Key: ask"]
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(head(ask, len(body)))  # and nothing more until told to go on
        interim = await client.answer()
        assert interim.status == 100, interim
        assert not client.buffer, "nothing but the 100 before the body"
        await client.send(body)
        final = await client.answer()
        event = await ingest.next()
    accepted(final, "http:ask")
    assert event.data == {"n": 100}


@pytest.mark.parametrize(
    ("headers", "length", "status"),
    [
        pytest.param([b"Authorization: Bearer wrong"], 10, 401, id="wrong token"),
        pytest.param([b"Authorization: Bearer s3cret"], MAX_BODY + 1, 413, id="too large"),
    ],
)
async def test_a_refusal_of_100_continue_comes_without_a_100(
    tmp_path, headers, length, status
) -> None:
    ask = [JSON, b"Expect: 100-continue", *headers]
    async with Ingest(tmp_path, token="s3cret") as ingest, connected(ingest.port) as client:
        await client.send(head(ask, length))  # the body is never sent
        answer = await client.answer()
        assert published(ingest) == 0
    refused(answer, status)  # and not a 100 first
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer", answer


async def test_an_expectation_other_than_100_continue_gets_417(tmp_path) -> None:
    message = request(headers=[JSON, b"Expect: something-else"], body=b'{"n": 1}')
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(message)
        answer = await client.answer()
        await client.closed()
        assert published(ingest) == 0
    refused(answer, 417, "something-else")


# -- limits ---------------------------------------------------------------------------------------


async def test_a_content_length_past_max_body_gets_413_before_the_body_is_sent(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(head([JSON], MAX_BODY + 1))  # the body is never sent
        answer = await client.answer()
        assert published(ingest) == 0
    refused(answer, 413, f"maxBodyBytes ({MAX_BODY})")


async def test_a_zip_bomb_gets_413_and_is_never_held_whole(tmp_path) -> None:
    inflated, limit = 64 << 20, 128 << 10
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip: 64 MiB of zeros in 64 KiB
    bomb = b"".join(squeeze.compress(bytes(1 << 20)) for _ in range(64)) + squeeze.flush()
    assert len(bomb) < limit < inflated
    message = request(headers=[JSON, b"Content-Encoding: gzip"], body=bomb)
    async with Ingest(tmp_path, max_body=limit) as ingest, connected(ingest.port) as client:
        tracemalloc.start()
        try:
            await client.send(message)
            answer = await client.answer()
            await client.closed()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert published(ingest) == 0
    refused(answer, 413, f"maxBodyBytes ({limit})")
    assert peak < inflated // 4, f"{peak} bytes allocated at the peak: the bomb went off"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([b"X-Big: " + b"a" * (100 << 10)], id="one 100 KiB header"),
        pytest.param([b"X-Header-%d: v" % n for n in range(1000)], id="1000 headers"),
    ],
)
async def test_a_header_section_too_large_gets_a_json_4xx_and_serving_goes_on(
    tmp_path, headers
) -> None:
    async with Ingest(tmp_path) as ingest:
        async with connected(ingest.port) as client:
            with contextlib.suppress(ConnectionError):  # the server may stop reading early
                await client.send(post(b'{"n": 0}', headers, key="huge"))
            answer = await client.answer()
            await client.closed()
        following = await exchange(
            ingest.port, request(headers=[JSON, b"Idempotency-Key: after"], body=b'{"n": 1}')
        )
        event = await ingest.next()
        assert published(ingest) == 1
    refused(answer, 431, "the request could not be read")  # aiohttp's server said 400
    accepted(following, "http:after")
    assert (event.id, event.data) == ("http:after", {"n": 1})


# -- a client that goes away ----------------------------------------------------------------------


async def test_a_client_gone_mid_body_puts_nothing_on_the_bus(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest:
        async with connected(ingest.port) as client:
            # 10 of 1,000 bytes, and those 10 would be JSON on their own
            await client.send(head([JSON, b"Idempotency-Key: gone"], 1000), b'{"n": 1}  ')
        following = await exchange(
            ingest.port, request(headers=[JSON, b"Idempotency-Key: after"], body=b'{"n": 2}')
        )
        event = await ingest.next()
        quiet = await asyncio.gather(
            nothing_within(ingest.events, 0.3), nothing_within(ingest.dead, 0.3)
        )
        assert published(ingest) == 1
    accepted(following, "http:after")
    assert (event.id, event.data) == ("http:after", {"n": 2})
    assert quiet == [True, True], "nothing of the cut request on the bus or the dead letter"


# -- many clients ---------------------------------------------------------------------------------


async def test_100_connections_of_5_requests_each_are_all_answered(tmp_path) -> None:
    connections, requests = 100, 5

    async def one(port: int, c: int) -> list[Answer]:
        answers = []
        async with connected(port) as client:
            for r in range(requests):
                last = r == requests - 1
                await client.send(post(b'{"c": %d, "r": %d}' % (c, r), key=f"{c}.{r}", close=last))
                answers.append(await client.answer())
            await client.closed()
        return answers

    async with Ingest(tmp_path) as ingest:
        answered = await asyncio.gather(*(one(ingest.port, c) for c in range(connections)))
        events = [await ingest.next() for _ in range(connections * requests)]
        assert published(ingest) == connections * requests
    for c, answers in enumerate(answered):
        for r, answer in enumerate(answers):
            accepted(answer, f"http:{c}.{r}")
    assert len({e.id for e in events}) == connections * requests
    for event in events:
        c, r = event.id.removeprefix("http:").split(".")
        assert event.data == {"c": int(c), "r": int(r)}, event


# -- every answer -------------------------------------------------------------------------------

TOKEN = b"Authorization: Bearer s3cret"


@pytest.mark.parametrize(
    ("message", "status"),
    [
        pytest.param(request(headers=[TOKEN, JSON], body=b'{"n": 1}'), 200, id="200"),
        pytest.param(request(headers=[TOKEN, JSON], body=b"{not json"), 400, id="400 not JSON"),
        pytest.param(request(headers=[TOKEN, JSON]), 400, id="400 empty"),
        pytest.param(
            b"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
            400,
            id="400 Content-Length not a number",
        ),
        pytest.param(
            chunked_head(close=True, headers=[TOKEN]) + b"zz\r\n{}\r\n0\r\n\r\n",
            400,
            id="400 chunk size not hex",
        ),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", 400, id="400 not HTTP"),
        pytest.param(request(headers=[JSON], body=b"{}"), 401, id="401"),
        pytest.param(request(path=b"/elsewhere", headers=[TOKEN], body=b"{}"), 404, id="404"),
        pytest.param(request(method=b"GET", headers=[TOKEN]), 405, id="405"),
        pytest.param(request(headers=[TOKEN, JSON], body=b"1" * (MAX_BODY + 1)), 413, id="413"),
        pytest.param(
            chunked([b"1" * 1024] * 3, close=True, headers=[TOKEN]), 413, id="413 chunked"
        ),
        pytest.param(
            request(headers=[TOKEN, b"Content-Type: text/plain"], body=b"hi"), 415, id="415"
        ),
        pytest.param(
            request(headers=[TOKEN, JSON, b"Expect: something-else"], body=b"{}"), 417, id="417"
        ),
    ],
)
async def test_every_answer_is_json_framed_by_its_content_length(tmp_path, message, status) -> None:
    async with Ingest(tmp_path, token="s3cret") as ingest, connected(ingest.port) as client:
        await client.send(message)
        answer = await client.answer()  # exactly Content-Length bytes of body
        await client.closed()  # and not one byte more
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/json"), answer
    document = orjson.loads(answer.body)  # the whole document, no more, no less
    if status == 200:
        assert document["accepted"] == 1 and len(document["ids"]) == 1, answer
    else:
        assert answer.reason(), answer


# -- Content-Encoding ---------------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    """Deflate without the zlib wrapper, as some clients send ``deflate``."""
    squeeze = zlib.compressobj(wbits=-15)
    return squeeze.compress(data) + squeeze.flush()


@pytest.mark.parametrize(
    ("encoding", "squeeze"),
    [
        pytest.param(b"identity", bytes, id="identity"),
        pytest.param(b"gzip", gzip.compress, id="gzip"),
        pytest.param(b"GZIP", gzip.compress, id="GZIP (a coding's name is case-insensitive)"),
        pytest.param(b"deflate", zlib.compress, id="deflate (zlib)"),
        pytest.param(b"deflate", raw_deflate, id="deflate (raw)"),
    ],
)
async def test_a_body_that_decompresses_is_taken_as_its_content(
    tmp_path, encoding, squeeze
) -> None:
    body = b'{"vehicle": "v7", "readings": [%s]}' % b", ".join(b"%d" % n for n in range(300))
    assert len(body) < MAX_BODY
    message = post(squeeze(body), [b"Content-Encoding: " + encoding], key="z", close=True)
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(message)
        answer = await client.answer()
        await client.closed()
        event = await ingest.next()
    accepted(answer, "http:z")
    assert event.data == orjson.loads(body)


# -- where this server differs from aiohttp's, on purpose -----------------------------------


@pytest.mark.parametrize("encoding", [b"compress", b"br", b"zstd", b"gzip, gzip"])
async def test_a_content_encoding_not_taken_gets_415_naming_it(tmp_path, encoding) -> None:
    """aiohttp took an unknown coding's bytes as they were (garbage data in the event) and
    answered zstd and br with a 400 about packages to install."""
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', [b"Content-Encoding: " + encoding], key="c"))
        answer = await client.answer()
        await client.send(post(b'{"n": 2}', key="next", close=True))  # the connection goes on
        following = await client.answer()
        event = await ingest.next()
    refused(answer, 415, f"Content-Encoding {encoding.decode()!r} is not taken")
    accepted(following, "http:next")
    assert event.data == {"n": 2}, "nothing of the refused request reached the bus"


async def test_x_gzip_is_read_as_gzip(tmp_path) -> None:
    """RFC 9110 8.4.1.3: a recipient should treat x-gzip as gzip; aiohttp did not."""
    message = post(gzip.compress(b'{"n": 1}'), [b"Content-Encoding: x-gzip"], key="x")
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(message)
        answer = await client.answer()
        event = await ingest.next()
    accepted(answer, "http:x")
    assert event.data == {"n": 1}


async def test_a_body_refused_for_its_size_is_answered_then_the_connection_closes(
    tmp_path,
) -> None:
    """aiohttp kept the connection and read the next request as the refused body. The
    answer must still arrive when the client has sent the whole body already (a close
    with its bytes unread would reset the connection and could lose the answer)."""
    body = b"[" + b"1," * MAX_BODY + b"1]"
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(body, key="big") + post(b'{"n": 1}', key="never"))
        answer = await client.answer()
        await client.closed()
        quiet = await nothing_within(ingest.events, 0.3)
    refused(answer, 413, f"maxBodyBytes ({MAX_BODY})")
    assert answer.headers["connection"] == "close", answer
    assert quiet, "the request after a refused body is not read"


async def test_a_request_target_too_long_gets_414(tmp_path) -> None:
    target = b"/readings?" + b"q" * http_server.MAX_TARGET_BYTES
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await client.answer()
        await client.closed()
    refused(answer, 414, "the request could not be read")


async def test_an_unreadable_request_is_answered_without_echoing_its_bytes(tmp_path) -> None:
    """aiohttp quoted the raw request in its 400, a bearer token included."""
    secret = b"s3cret-token"
    bad = post(b"{}", [b"Authorization: Bearer " + secret + b"\x00"])
    async with Ingest(tmp_path, token=secret.decode()) as ingest, connected(ingest.port) as client:
        await client.send(bad)
        answer = await client.answer()
        await client.closed()
    refused(answer, 400, "the request could not be read")
    assert secret not in answer.body, answer


async def test_a_client_that_half_closes_still_gets_its_answer(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', key="half"))
        client.sock.shutdown(socket.SHUT_WR)
        answer = await client.answer()
        await client.closed()
        event = await ingest.next()
    accepted(answer, "http:half")
    assert event.data == {"n": 1}


async def test_an_idle_connection_is_closed(tmp_path, monkeypatch) -> None:
    """aiohttp's keep-alive timeout, kept; shortened here (the default is 75 s)."""
    monkeypatch.setattr(http_server, "IDLE_SECONDS", 0.5)
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(post(b'{"n": 1}', key="idle"))
        accepted(await client.answer(), "http:idle")
        await client.closed(timeout=5 * 0.5)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_post_that_asks_to_upgrade_is_taken_as_http11(tmp_path, framing) -> None:
    """curl's --http2 on an http:// URL asks for h2c on the POST that carries the body;
    the ask is ignored (RFC 9110 7.8) and the connection stays HTTP/1.1."""
    ask = [b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABk"]
    if framing == "chunked":
        first = chunked([b'{"n"', b": 1}"], headers=[*ask, b"Idempotency-Key: up"])
    else:
        first = post(b'{"n": 1}', ask, key="up")
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(first + post(b'{"n": 2}', key="after", close=True))
        answers = [await client.answer(), await client.answer()]
        await client.closed()
        events = [await ingest.next(), await ingest.next()]
    accepted(answers[0], "http:up")
    accepted(answers[1], "http:after")
    assert [e.data for e in events] == [{"n": 1}, {"n": 2}]


async def test_connect_is_refused_and_the_tunnel_never_read(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest, connected(ingest.port) as client:
        await client.send(b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n" + post(b"{}"))
        answer = await client.answer()
        await client.closed()
        quiet = await nothing_within(ingest.events, 0.3)
    refused(answer, 404, "POST events to /readings")
    assert quiet, "the bytes after a CONNECT are not read as a request"
