"""The HTTP/1.1 server under the ``http`` source: requests in, answers out, in order.

Why not aiohttp's server: an ingest request needs one thing, its whole body handed to one
function and the answer written back on a kept-alive connection. aiohttp's server did far
more per request (a request object, a payload stream, a response object, its router's
machinery), and it and its client took most of the ingest's time in a profile. This
server parses with httptools (llhttp, the parser Node.js runs) on an
``asyncio.Protocol`` (asyncio's loop or uvloop), and keeps what a client relies on:

- keep-alive (HTTP/1.1, and HTTP/1.0 that asks for it) and pipelining: answers go back
  in the order the requests came, one request is handled at a time per connection;
- ``Content-Length`` and chunked bodies, ``Content-Encoding`` undone
  (:mod:`sources.http_bodies`), never past the body limit;
- ``Expect: 100-continue``: the client is told to go on only if the request is not
  refused on its head; a refused one is answered at once and the connection closed, so
  the client need not send the body;
- a request refused on its head (:data:`Screen`) is answered before its body is read;
  what is left of the body is thrown away and the connection stays open, unless the
  body is too large: then the answer is sent, the connection half-closed and drained
  briefly, and closed (a close with unread bytes would reset it and could lose the
  answer);
- a request that cannot be read gets a 400 (414 and 431 past the head's limits) and
  the connection is closed;
- a request that asks to switch protocols is read as HTTP/1.1 (see
  :meth:`_Connection._upgrade_refused`);
- the answer to ``HEAD`` has no body;
- a connection with no request in progress and no bytes for :data:`IDLE_SECONDS` is
  closed (aiohttp's keep-alive timeout);
- a client that does not read its answers stops being read from (flow control), so
  pipelined requests cannot pile up in memory.

Every answer, including the server's own refusals, comes from the caller's
:data:`Answering` functions, so the source decides the body (JSON) of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import NoReturn
from urllib.parse import unquote

import httptools
from multidict import CIMultiDict

from sources.http_bodies import Inflate, TooLarge, Undecodable, Unsupported

log = logging.getLogger(__name__)

#: The most bytes of a request target (414 past it), of one header line (431), of all
#: the head (431), and the most header lines (431); aiohttp's limits but the third.
MAX_TARGET_BYTES = 8190
MAX_HEADER_BYTES = 8190
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 128
#: Seconds a connection may sit with no request in progress before it is closed.
IDLE_SECONDS = 75.0
#: Seconds a closing connection's answer has to be read, and the client's remaining
#: bytes are drained, before the connection is dropped.
LINGER_SECONDS = 2.0
#: Requests read ahead on one connection before reading from it pauses.
MAX_PIPELINED = 32
INTERNAL_ERROR = "internal error in the HTTP ingest (logged); send again later"
_TOO_LARGE = "body larger than maxBodyBytes ({})"
#: Seconds the requests being handled get to be answered when the server stops.
STOP_GRACE_SECONDS = 10.0


@dataclass(slots=True)
class Request:
    """One request: its head, and its body (decompressed) once it has been read."""

    method: str
    path: str  #: percent-decoded, without the query
    headers: CIMultiDict[str]  #: values decoded as UTF-8; other bytes as lone surrogates
    http_11: bool
    keeps_alive: bool = True  #: what the client asked (HTTP/1.0 keeps alive only if asked)
    body: bytes = b""


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] | None = None


#: The answer to a request refused on its head, if it is (None: read the body).
Screen = Callable[[Request], Answer | None]
#: The answer to a request whose body has been read.
Handle = Callable[[Request], Awaitable[Answer]]
#: The answer to a request that cannot be read or handled: (status, reason) -> answer.
Fail = Callable[[int, str], Answer]


@dataclass(frozen=True, slots=True)
class Answering:
    """What the server calls: ``screen`` each head, ``handle`` each request read,
    ``fail`` for what went wrong; ``max_body`` bounds every (decompressed) body."""

    screen: Screen
    handle: Handle
    fail: Fail
    max_body: int


class Server:
    """Serves ``answering`` on a host and port until :meth:`close`."""

    def __init__(self, answering: Answering) -> None:
        self.answering = answering
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.closing = False

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        self._sweeper = loop.create_task(self._sweep_idle())

    async def close(self) -> None:
        """Stop listening and reading, give the requests being handled
        :data:`STOP_GRACE_SECONDS` to be answered, and close every connection. Requests
        read but not yet handled are not answered: their clients send them again."""
        self.closing = True  # a connection the listener still hands over is closed at once
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for connection in list(self.connections):
            connection.wind_down()
        busy = [c.handling for c in self.connections if c.handling is not None]
        if busy:
            await asyncio.wait(busy, timeout=STOP_GRACE_SECONDS)
        for task in busy:
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)
        for connection in list(self.connections):
            connection.drop()

    async def _sweep_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SECONDS / 5)
            cutoff = time.monotonic() - IDLE_SECONDS
            for connection in list(self.connections):
                if connection.handling is None and connection.last_read < cutoff:
                    connection.abort()  # not close: a client that reads nothing holds that


class _Refused(Exception):
    """Raised in a parser callback to stop parsing: the connection is closing."""


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, queues them, answers them in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.answering = server.answering
        self.parser = httptools.HttpRequestParser(self)
        # an asyncio.Transport, or uvloop's, which quacks alike but is no subclass
        self.transport: asyncio.Transport | None = None
        self.handling: asyncio.Task[None] | None = None
        self.last_read = time.monotonic()
        #: requests to handle, and answers (with the request each answers) to write
        self._queue: deque[Request | tuple[Answer, Request | None]] = deque()
        self._closing = False  # once the queue is written, close
        self._winding_down = False  # the server stops: handle nothing more
        self._eof_written = False
        self._paused_writing = False
        self._paused_reading = False
        self._heard = False  # the parser called back during the current read
        self._silent = 0  # bytes read since it last did
        self._replay: bytes | None = None  # a head asking to upgrade, to be read again
        self._replayed = False
        self._begin()

    def _begin(self) -> None:
        self._url = b""
        self._raw_headers: list[tuple[str, str]] = []
        self._request: Request | None = None
        self._head_bytes = 0  # of the head's lines the parser has handed over
        self._body: bytes | bytearray = b""
        self._inflate: Inflate | None = None
        self._discard = False  # the request was answered on its head
        self._discarded = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.server.closing:  # accepted as the server stops: never served
            transport.abort()  # type: ignore[attr-defined]
            return
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._queue.clear()  # never answered: the client sends them again
        self.transport = None

    def pause_writing(self) -> None:
        self._paused_writing = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        rest: bytes | memoryview | None = data
        while rest is not None and not self._closing:
            rest = self._feed(rest)

    def eof_received(self) -> bool:
        """The client sends no more: answer what it sent whole, then close."""
        self._closing = True
        self._request = None  # a request cut short is not taken
        return bool(self._queue) or self.handling is not None  # True: keep it to answer

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def wind_down(self) -> None:
        """The server stops: read nothing more; answer the request being handled and the
        refusals ahead of the first request that will not be (so answers stay in order,
        and the last says ``Connection: close``)."""
        self._winding_down = True
        self._pause_reading()
        kept: deque[Request | tuple[Answer, Request | None]] = deque()
        for item in self._queue:
            if type(item) is Request and not (not kept and self.handling is not None):
                break  # not handled: its client sends it again, and what follows it
            kept.append(item)
        self._queue = kept
        self._close_after_queue()

    def drop(self) -> None:
        """Close; abort if the client has not read what was written (it may never)."""
        if self.transport is not None:
            _drop(self.transport)

    # -- parsing -------------------------------------------------------------------------

    def _feed(self, data: bytes | memoryview) -> memoryview | None:
        """Parse ``data``; what is left of it to parse after a head read again (see
        :meth:`_upgrade_refused`), else None."""
        upgrade_at, self._heard = None, False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:  # what a callback raised is inside
            if not isinstance(exc.__context__, _Refused):
                log.error("the HTTP ingest failed reading a request", exc_info=exc.__context__)
                self._answer_last(self.answering.fail(500, INTERNAL_ERROR))
            return None
        except httptools.HttpParserUpgrade as exc:
            upgrade_at = exc.args[0]
        except httptools.HttpParserError as exc:
            self._unreadable(400, _parser_reason(exc))
            return None
        if upgrade_at is not None:  # out of the except: what the replay raises is its own
            return self._upgrade_refused(memoryview(data)[upgrade_at:])
        self._check_silence(len(data))
        return None

    def _check_silence(self, read: int) -> None:
        """httptools holds a header or trailer line until it ends, and calls back only
        then: bytes read with no call back at all are one line (or a chunk's extension)
        growing. A valid one stays far below :data:`MAX_HEAD_BYTES`; past it, the
        request is refused before that line takes more memory."""
        if self._heard:
            self._silent = 0
            return
        self._silent += read
        if self._silent > MAX_HEAD_BYTES:
            self._unreadable(431, f"a line of the request is past {MAX_HEAD_BYTES} bytes")

    def _upgrade_refused(self, rest: memoryview) -> memoryview | None:
        """llhttp stops at the head of a request that asks to switch protocols (curl's
        ``--http2`` on ``http://`` asks on a POST with its body). No protocol is switched
        to here (RFC 9110 7.8 lets a server ignore the ask): a new parser reads the head
        again without ``Upgrade``, then the body. A CONNECT's tunnel, or a head that
        asks again (``PRI *``), cannot be read as HTTP/1.1: after the answer the
        connection closes."""
        replay, self._replay = self._replay, None
        if replay is None:
            self._close_after_queue()
            return None
        self.parser = httptools.HttpRequestParser(self)
        self._replayed = True
        self._feed(replay)  # a head alone, that asks nothing: never read again itself
        return rest if rest and not self._closing else None

    def _head_without_upgrade(self) -> bytes:
        parser = self.parser
        version = parser.get_http_version().encode()
        lines = [b"%s %s HTTP/%s" % (parser.get_method(), self._url, version)]
        lines += [
            f"{name}: {value}".encode("utf-8", "surrogateescape")
            for name, value in self._raw_headers
            if name.lower() != "upgrade"
        ]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._heard = True
        self._begin()
        self._request = _PENDING_HEAD

    def on_url(self, url: bytes) -> None:
        self._heard = True
        self._url += url
        if len(self._url) > MAX_TARGET_BYTES:
            self._unreadable(414, f"the request target is longer than {MAX_TARGET_BYTES} bytes")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._heard = True
        headers = self._raw_headers
        line = len(name) + len(value)
        self._head_bytes += line + 4  # ": " and CRLF
        if line > MAX_HEADER_BYTES or len(headers) == MAX_HEADERS:
            limits = f"{MAX_HEADERS} header lines of up to {MAX_HEADER_BYTES} bytes"
            self._unreadable(431, f"the request's headers are past the limits: {limits}")
            raise _Refused
        if self._head_bytes + len(self._url) > MAX_HEAD_BYTES:
            self._unreadable(431, f"the request's head is past {MAX_HEAD_BYTES} bytes")
            raise _Refused
        headers.append(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        self._heard = True
        parser = self.parser
        replayed, self._replayed = self._replayed, False
        if parser.should_upgrade() and not replayed and parser.get_method() != b"CONNECT":
            self._replay = self._head_without_upgrade()
            return  # read again: see _upgrade_refused
        request = Request(
            parser.get_method().decode("ascii", "replace"),
            _path(self._url),
            CIMultiDict(self._raw_headers),
            parser.get_http_version() == "1.1",
            parser.should_keep_alive(),
        )
        self._request = request
        expect = request.headers.get("Expect")
        expects = request.http_11 and expect is not None and expect.lower() == "100-continue"
        refusal = (
            self.answering.screen(request) or self._too_large(request) or self._decoder(request)
        )
        if refusal is not None:
            self._discard = True  # what comes of the body is thrown away
            closes = not request.keeps_alive or parser.should_upgrade()  # CONNECT
            if expects or refusal.status == 413 or closes:
                # the client waits for a 100 that will not come, or the body is not wanted
                self._answer_last(refusal, request)
                raise _Refused
            self._push((refusal, request))
            return
        if expects and not self._queue and self.handling is None and self.transport:
            # told to go on only with nothing answered ahead of it, where a 100 would be
            # taken as another request's; otherwise the client sends after its own wait
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _too_large(self, request: Request) -> Answer | None:
        declared = request.headers.get("Content-Length")
        limit = self.answering.max_body
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self.answering.fail(413, _TOO_LARGE.format(limit))
        return None

    def _decoder(self, request: Request) -> Answer | None:
        """Set up the body's decompression; a 415 for a coding not taken."""
        encoding = request.headers.get("Content-Encoding")
        if encoding is not None:
            try:
                self._inflate = Inflate.of(encoding, self.answering.max_body)
            except Unsupported as exc:
                return self.answering.fail(415, str(exc))
        return None

    def on_body(self, chunk: bytes) -> None:
        self._heard = True
        if self._discard:  # answered on its head: thrown away, up to a body's worth
            self._discarded += len(chunk)
            if self._discarded > self.answering.max_body:
                self._close_after_queue()
                raise _Refused
            return
        try:
            self._append(chunk if self._inflate is None else self._inflate.feed(chunk))
        except (TooLarge, Undecodable) as exc:
            self._refuse_body(exc)

    def _append(self, chunk: bytes) -> None:
        body = self._body
        if not body:
            self._body = body = chunk
        else:
            if type(body) is bytes:
                self._body = body = bytearray(body)
            body += chunk
        if len(body) > self.answering.max_body:
            raise TooLarge

    def on_message_complete(self) -> None:
        self._heard = True
        if self._replay is not None:
            return  # a head to be read again (see _upgrade_refused)
        request = self._request
        if self._discard:
            self._request = None
        else:
            assert request is not None and request is not _PENDING_HEAD
            self._take_body(request)
        if not self.parser.should_keep_alive():
            # answer what is queued, this request last, then close; nothing after it is read
            self._close_after_queue()
            raise _Refused

    def _take_body(self, request: Request) -> None:
        try:
            if self._inflate is not None:
                self._append(self._inflate.finish())
        except (TooLarge, Undecodable) as exc:
            self._refuse_body(exc)
        body = self._body
        request.body = body if type(body) is bytes else bytes(body)
        self._push(request)
        self._request = None

    # -- answering in order --------------------------------------------------------------

    def _push(self, item: Request | tuple[Answer, Request | None]) -> None:
        queue = self._queue
        queue.append(item)
        if len(queue) >= MAX_PIPELINED:
            self._pause_reading()
        if self.handling is None:
            self._advance()

    def _advance(self) -> None:
        """Write what is ready at the head of the queue; start handling the first
        request; close once the queue is empty if the connection is closing."""
        queue = self._queue
        while queue:
            item = queue[0]
            if type(item) is Request:
                self.handling = asyncio.get_running_loop().create_task(self._handle(item))
                return
            queue.popleft()
            self._write(*item)  # type: ignore[misc]
        self._resume_reading()
        if self._closing and self._request is None:
            self._linger()

    async def _handle(self, request: Request) -> None:
        try:
            answer = await self.answering.handle(request)
        except Exception:
            log.exception("the HTTP ingest failed on a request to %s", request.path)
            answer = self.answering.fail(500, INTERNAL_ERROR)
            self._queue.clear()  # what was read ahead is not answered; clients send again
            self._queue.append(request)
            self._closing = True
            self._request = None
        self.handling = None
        if self.transport is None:
            return  # the client went away; its queue is gone
        self._queue.popleft()
        self._write(answer, request)
        self._advance()

    def _write(self, answer: Answer, request: Request | None) -> None:
        if self.transport is None or self._eof_written:
            return
        closing = self._closing and not self._queue and self._request is None
        self.transport.write(_encode(answer, closing, request))

    # -- refusing and closing ------------------------------------------------------------

    def _refuse_body(self, problem: TooLarge | Undecodable) -> NoReturn:
        """The body cannot be taken: answer 413 or 400 (after what is ahead), then close."""
        self._discard = True
        if isinstance(problem, TooLarge):
            answer = self.answering.fail(413, _TOO_LARGE.format(self.answering.max_body))
        else:
            answer = self.answering.fail(400, str(problem))
        self._answer_last(answer, self._request)
        raise _Refused

    def _unreadable(self, status: int, reason: str) -> None:
        answer = self.answering.fail(status, f"the request could not be read: {reason}")
        self._answer_last(answer, self._head_so_far())

    def _head_so_far(self) -> Request | None:
        """What the answer to a request cut short must know of it: its method (a HEAD's
        answer has no body) and version, once the request line has been read."""
        if self._request is not _PENDING_HEAD or not self._url:
            return None
        parser = self.parser
        http_11 = parser.get_http_version() == "1.1"
        return Request(parser.get_method().decode("ascii", "replace"), "", _NO_HEADERS, http_11)

    def _answer_last(self, answer: Answer, request: Request | None = None) -> None:
        """Answer ``answer`` after what is queued, then close; nothing more is read."""
        self._closing = True
        self._request = None
        self._push((answer, request if request is not _PENDING_HEAD else None))

    def _close_after_queue(self) -> None:
        self._closing = True
        self._request = None
        if not self._queue and self.handling is None:
            self._linger()

    def _linger(self) -> None:
        """Half-close, drain what the client still sends for a while, then close."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._eof_written:
            return
        self._eof_written = True
        if not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:  # the client reset the connection meanwhile
            transport.abort()
            return
        self._resume_reading()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, _drop, transport)

    def _pause_reading(self) -> None:
        transport = self.transport
        if not self._paused_reading and transport is not None and not transport.is_closing():
            self._paused_reading = True
            transport.pause_reading()

    def _resume_reading(self) -> None:
        transport = self.transport
        if (
            self._paused_reading
            and not self._paused_writing
            and not self._winding_down
            and len(self._queue) < MAX_PIPELINED
            and transport is not None
            and not transport.is_closing()
        ):
            self._paused_reading = False
            transport.resume_reading()


def _drop(transport: asyncio.Transport) -> None:
    """Close a connection; abort it if what was written to it is still unread."""
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


#: Stands for a request whose head is still being read.
_PENDING_HEAD = Request("", "", CIMultiDict(), True)
_NO_HEADERS: CIMultiDict[str] = CIMultiDict()


def _path(url: bytes) -> str:
    if not url.startswith(b"/"):  # absolute form (RFC 9112 3.2.2), as proxies send
        with contextlib.suppress(httptools.HttpParserInvalidURLError):  # "*" (OPTIONS *)
            url = httptools.parse_url(url).path or b"/"
    path = url.partition(b"?")[0].partition(b"#")[0].decode("utf-8", "surrogateescape")
    if "%" not in path:
        return path
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        return path  # not UTF-8 once decoded: no source's path, shown as it came


def _parser_reason(exc: httptools.HttpParserError) -> str:
    return str(exc) or type(exc).__name__  # llhttp's own words: "Invalid header value char"


_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}


def _encode(answer: Answer, closing: bool, request: Request | None) -> bytes:
    """``answer`` on the wire, as the answer to ``request`` (None: one that was not read)."""
    body = answer.body
    head = [
        _STATUS_LINES.get(answer.status) or b"HTTP/1.1 %d Unknown\r\n" % answer.status,
        b"Content-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n"
        % (answer.content_type.encode(), len(body), _date()),
    ]
    if answer.headers:
        head += [f"{name}: {value}\r\n".encode() for name, value in answer.headers.items()]
    if closing:
        head.append(b"Connection: close\r\n")
    elif request is not None and not request.http_11:  # HTTP/1.0 closes unless told
        head.append(b"Connection: keep-alive\r\n")
    if request is not None and request.method == "HEAD":  # the length it would have
        body = b""
    return b"".join(head) + b"\r\n" + body


_date_cache: list = [0, b""]


def _date() -> bytes:
    """The Date header's value (RFC 9110 6.6.1), formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date_cache[1]
