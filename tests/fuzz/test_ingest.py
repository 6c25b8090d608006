"""Fuzzing HTTP ingest: raw requests over a socket into a real, running ingest server.

The server is the ``http`` EventSource as ``fnevents run`` runs it (a Runtime on the
embedded bus, :class:`tests.sources.test_http_source.Ingest`), in a thread of its own,
with a bearer token and a 16 KiB ``maxBodyBytes``. Requests vary the method, the path,
the headers (Content-Type with real, unknown and non-text charsets; ``ce-*``
attributes, percent-encoded or raw bytes that are not UTF-8; Authorization in any
case and with raw bytes; Content-Encoding with good and corrupt bodies; chunked
framing, good and broken; Expect), and the body (anything the payload fuzz makes, and
sizes past the limit).

Properties, for every request:

- every answer is JSON with a reason (``{"error": ...}``, bounded) or an acceptance
  (``{"accepted": n, "ids": [...]}``), and no answer is a 5xx but the documented 503
  (with ``Retry-After``) when the bus cannot take the event;
- it is answered within ``WALL_SECONDS`` and costs at most ``CPU_SECONDS`` of CPU and
  ``MEMORY_BUDGET`` of allocation (the server runs in this process, so both count);
- every event accepted, and every dead letter written, reaches the bus and can be
  encoded for delivery and decodes back equal (checked by the readers of the bus
  topics, :func:`tests.fuzz.test_payloads.delivers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from events.bindings import http
from events.errors import PROBLEM_LIMIT
from tests.fuzz.budget import FUZZ, TEST_TIMEOUT, cpu_budget
from tests.fuzz.test_payloads import (
    BODIES,
    CONTENT_TYPES,
    JSON,
    STRUCTURED_DOCUMENT,
    TEXT,
    WIRE_TEXT,
    delivers,
    json_text,
    mostly,
)
from tests.helpers import wait_until
from tests.sources.test_http_source import Answer, Ingest

TOKEN = "s3cret"
MAX_BODY = 16 * 1024
CPU_SECONDS = 2.0
WALL_SECONDS = 10.0
#: Peak allocation while one request is handled: the body (and a copy or two of it,
#: decompressed at most to the limit), its events, and the server's buffers.
MEMORY_BUDGET = 32 * MAX_BODY + 8 * 1024 * 1024

pytestmark = pytest.mark.timeout(TEST_TIMEOUT + 60)


@dataclass
class Server:
    """The ingest server in its own event loop and thread, with readers that take every
    event and dead letter off the bus and check each delivers."""

    port: int = 0
    seen: set[str] = field(default_factory=set)  #: ids of the events (not letters) read
    letters: int = 0
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ingest", daemon=True)
    thread.start()
    ingest = Ingest(tmp_path_factory.mktemp("ingest"), token=TOKEN, max_body=MAX_BODY)
    state = Server()

    async def read(subscription, letters: bool) -> None:
        async for message in subscription:
            try:
                delivers(message.event)
            except Exception as exc:  # noqa: BLE001 - recorded, the test fails on it
                state.problems.append(f"{message.event.id!r}: {type(exc).__name__}: {exc}")
            if letters:
                state.letters += 1
            else:
                state.seen.add(message.event.id)
            await message.ack()

    async def start() -> list[asyncio.Task]:
        await ingest.__aenter__()
        return [
            asyncio.create_task(read(ingest.events, letters=False)),
            asyncio.create_task(read(ingest.dead, letters=True)),
        ]

    readers = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    state.port = ingest.port
    try:
        yield state
    finally:

        async def stop() -> None:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await ingest.__aexit__(None, None, None)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- requests ----------------------------------------------------------------------------


def _raw(text: str) -> bytes:
    """Header text as the wire carries it: UTF-8, and lone surrogates as the raw byte
    they stand for (so a header can hold bytes that are not UTF-8)."""
    return (
        text.encode("utf-8", "surrogateescape")
        if _escapable(text)
        else text.encode("utf-8", "replace")
    )


def _unicode(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)


def _escapable(text: str) -> bool:
    """Whether every lone surrogate in ``text`` stands for a raw byte (U+DC80-U+DCFF)."""
    return all(0xDC80 <= ord(c) <= 0xDCFF or not 0xD800 <= ord(c) <= 0xDFFF for c in text)


_CONTROLS = bytes(c for c in range(32) if c != 9) + b"\x7f"


def _header_value(text: str, controls: bool) -> bytes:
    """``text`` as a header value. CR, LF and NUL would end the header or are refused by
    every parser (a framing case of its own, FRAMING); other control characters are
    kept only when ``controls``, as a parser refuses those too."""
    value = _raw(text).replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
    return value if controls else value.translate(None, _CONTROLS)


CE_ATTRIBUTES = st.fixed_dictionaries(
    {
        "specversion": mostly(st.just("1.0"), WIRE_TEXT),
        "id": mostly(st.just("e-1"), TEXT),
        "source": mostly(st.just("/s"), TEXT),
        "type": mostly(st.just("t"), TEXT),
    },
    optional={"subject": TEXT, "time": TEXT, "fleet": TEXT, "Bad_Name": TEXT},
)


def usually(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` seven times in eight: a request is refused at its first wrong part, so the
    parts before the body are mostly right, for the body's rules to be reached."""
    return st.integers(1, 8).flatmap(lambda n: bad if n == 8 else good)


def _one_in(n: int, draw) -> bool:
    """True about once in ``n`` draws (not on 0, the value Hypothesis favours)."""
    return draw(st.integers(1, n)) == n


@st.composite
def headers(draw) -> list[bytes]:
    lines: list[bytes] = []
    controls = _one_in(9 + 1, draw)

    def header(text: str) -> bytes:
        return _header_value(text, controls)

    content_type = draw(mostly(st.sampled_from(TAKEN_TYPES), st.none() | CONTENT_TYPES))
    if content_type is not None:
        lines.append(b"Content-Type: " + header(content_type))
    if _one_in(2 + 1, draw):
        encode = draw(st.booleans())
        for name, value in draw(CE_ATTRIBUTES).items():
            text = http.encode_header_value(name, value) if encode and _unicode(value) else value
            lines.append(b"ce-" + name.encode() + b": " + header(text))
    auth = draw(
        usually(
            st.sampled_from([f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN}"]),
            st.sampled_from([f"Basic {TOKEN}", "Bearer", "", f"Bearer {TOKEN}x"]) | WIRE_TEXT,
        )
    )
    if auth is not None:
        lines.append(b"Authorization: " + header(auth))
    if draw(st.booleans()):
        lines.append(b"Idempotency-Key: " + header(draw(WIRE_TEXT)))
    if _one_in(9 + 1, draw):
        lines.append(b"Expect: " + draw(st.sampled_from([b"100-continue", b"teapot"])))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)).encode()
        lines.append(name + b": " + header(draw(WIRE_TEXT)))
    return lines


#: Content types the server takes (with a body to match).
TAKEN_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "text/plain; charset=latin-1",  # with ce- headers, a binary-mode event
]
#: Bodies the server takes, given the right type: JSON, events, batches of them.
TAKEN_BODIES = st.one_of(
    JSON.map(orjson.dumps),
    STRUCTURED_DOCUMENT.map(json_text),
    st.lists(STRUCTURED_DOCUMENT, max_size=3).map(json_text),
)
ENCODINGS = [None, "gzip", "deflate", "identity", "br", "zstd", "x-bogus"]


def _compress(body: bytes, encoding: str | None, corrupt: bool) -> bytes:
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    if corrupt and body:
        body = body[: len(body) // 2] + b"\x00garbage" + body[len(body) // 2 :]
    return body


def _chunked(body: bytes, broken: bool) -> bytes:
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return (b"zz\r\n" if broken else b"") + framed + b"0\r\n\r\n"


#: Requests that are not HTTP, or not well framed (each ends its headers, so the server
#: never waits for more).
FRAMING = st.sampled_from(
    [
        b"NOT HTTP\r\n\r\n",
        b"POST /readings HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        b"POST /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
        b"Connection: close\r\n\r\n0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS on the plain port
    ]
)


@st.composite
def requests(draw) -> tuple[bytes, bytes]:
    """(method, the whole request)."""
    if _one_in(19 + 1, draw):
        return b"", draw(FRAMING)
    method = draw(usually(st.just(b"POST"), st.sampled_from([b"GET", b"PUT", b"HEAD", b"BREW"])))
    path = draw(
        usually(
            st.just(b"/readings"),
            st.sampled_from([b"/", b"/readings/", b"/readings?x=1", b"/%ff", b"/r\xffs", b"*"]),
        )
    )
    body = draw(
        mostly(
            mostly(TAKEN_BODIES, BODIES),
            st.integers(MAX_BODY - 8, MAX_BODY * 4).map(lambda n: b"[" + b"0," * (n // 2) + b"0]"),
        )
    )
    lines = [b"%s %s HTTP/1.1" % (method, path), b"Host: 127.0.0.1", *draw(headers())]
    encoding = draw(mostly(st.none(), st.sampled_from(ENCODINGS)))
    if encoding is not None:
        lines.append(b"Content-Encoding: " + encoding.encode())
        body = _compress(body, encoding, corrupt=_one_in(3 + 1, draw))
    if _one_in(4 + 1, draw):
        lines.append(b"Transfer-Encoding: chunked")
        body = _chunked(body, broken=_one_in(3 + 1, draw))
    else:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return method, b"\r\n".join(lines) + b"\r\n\r\n" + body


# -- the property ---------------------------------------------------------------------------


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request``; everything the server says until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=WALL_SECONDS) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(request)  # the server may answer (and close) before reading it all
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return bytes(received)


def answers(raw: bytes) -> list[Answer]:
    """Every final answer in what came back (1xx interim answers skipped)."""
    found = []
    while raw:
        head, separator, rest = raw.partition(b"\r\n\r\n")
        assert separator, f"an answer ends in the middle of its headers: {raw[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:  # an interim answer: headers only
            raw = rest
            continue
        length = int(headers.get("content-length", len(rest)))
        body, raw = rest[:length], rest[length:]
        found.append(Answer(status, headers, body))
    return found


def check(answer: Answer, method: bytes) -> list[str]:
    """The answer is as documented; the ids it says were taken."""
    assert answer.status < 500 or answer.status == 503, answer
    if answer.status == 503:
        assert answer.headers.get("retry-after"), answer
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    if method == b"HEAD":
        return []  # an answer to HEAD has no body
    document = orjson.loads(answer.body)
    if answer.status == 200:
        assert document["accepted"] == len(document["ids"]), answer  # a batch may be empty
        event("accepted")
        return document["ids"]
    reason = document["error"]
    assert isinstance(reason, str) and reason and len(reason) <= PROBLEM_LIMIT + 100, answer
    event(f"refused {answer.status}: {reason[:60]!a}")
    return []


@settings(**FUZZ)
@given(requests())
def test_every_request_gets_a_json_answer_and_what_is_taken_delivers(server, request) -> None:
    method, raw = request
    with cpu_budget(CPU_SECONDS, traced=True) as spent:
        got = answers(exchange(server.port, raw))
    assert got, "an answer"
    taken = [event_id for answer in got for event_id in check(answer, method)]
    assert spent.peak_bytes <= MEMORY_BUDGET, f"{spent.peak_bytes} bytes for one request"
    wait_until(lambda: server.seen.issuperset(taken), "the events taken are on the bus", 5)
    assert not server.problems, server.problems[:3]
