"""A lean HTTP/1.1 client for sinks: POST a body, read the whole answer.

Why not aiohttp's client, which the sinks used before: for every POST it builds a
request object, a response object, a stream reader and its own timers, and in
``bench/trigger_http`` that was most of a delivery's CPU. A sink needs much less:
one request written in one call on a kept-alive connection, and the answer parsed
by ``httptools`` (llhttp, the parser Node.js uses). Side by side on one sink server
this client posts about 1.6-3x the requests/s of an aiohttp session.

What it does:

- **Connections** are pooled per origin (scheme, host, port), at most
  ``connections_per_host`` open at once; a request beyond that waits for one. A
  connection is reused while the server keeps it alive (HTTP/1.1 default, or
  ``Connection: keep-alive`` for HTTP/1.0) and closed otherwise, or once it has
  sat idle for ``IDLE_SECONDS``.
- **A kept-alive connection the server has closed** is found out when the request
  sent on it gets no answer at all; the request is then sent again on a new
  connection, as browsers do. The server may have read it (at least once: a sink
  can see an event twice, never lose one).
- **Answers**: ``Content-Length``, chunked, or read to the end of the connection;
  interim ``1xx`` answers are skipped; redirects are not followed (a sink that
  answers ``3xx`` refused the POST). A 2xx answer is read whole, up to ``MAX_BODY``;
  of any other only the status, headers and first bytes are kept, and its
  connection is closed rather than read to the end (an error page can be huge or
  endless). Bytes that arrive when no request waits close the connection.
- **Connecting** tries each of a host's addresses, starting the next one after
  ``HAPPY_EYEBALLS_DELAY`` (RFC 8305, with aiohttp's own helper library), and a
  ``user:password@`` in the URL is sent as Basic auth, as aiohttp did.
- **Timeouts** belong to the caller (``asyncio.timeout`` around :meth:`post`): a
  request cancelled mid-way closes its connection, so no half-read answer is left
  in the pool.
- ``https`` URLs connect with TLS, verified with the system's CAs unless an
  ``ssl_context`` is given.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import NamedTuple

import aiohappyeyeballs
import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

USER_AGENT = "fnevents"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_TARGETS = 1024  # parsed URLs kept; sinks are few, so this only bounds odd callers
#: Seconds a pooled connection may sit idle and still be reused (aiohttp's default too):
#: past that, a server or a NAT on the way may have dropped it without a word.
IDLE_SECONDS = 15.0
#: Of an answer that is not 2xx only this much body is kept, and the connection is closed
#: once the answer's headers are in: an error page can be huge or never end, and its start
#: says why. A 2xx answer (which may carry a reply event) is read whole, up to MAX_BODY.
ERROR_BODY_BYTES = 1024
MAX_BODY = 64 * 1024 * 1024
#: How long to wait on one of a host's addresses before also trying the next (RFC 8305).
HAPPY_EYEBALLS_DELAY = 0.25


class HttpAnswer(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class HttpError(Exception):
    """The request could not be made or got no usable answer; sending it again may help."""


class CannotConnect(HttpError):
    pass


class ConnectionLost(HttpError):
    pass


class BadAnswer(HttpError):
    pass


class BadRequest(ValueError):
    """The request cannot be written (a URL that is not http(s), a line break in a
    header): sending it again will not help."""


class _Target(NamedTuple):
    origin: tuple[str, str, int]
    head: str  # request line, Host and User-Agent; the caller's headers follow


def _target(url: str) -> _Target:
    try:
        parsed = URL(url)
        scheme, host, port = parsed.scheme, parsed.raw_host, parsed.port
    except ValueError as exc:
        raise BadRequest(f"{url!r} is not a URL: {exc}") from None
    if scheme not in _DEFAULT_PORTS or not host:
        raise BadRequest(f"{url!r} is not an http:// or https:// URL with a host")
    port = _DEFAULT_PORTS[scheme] if port is None else port
    shown = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        shown = f"{shown}:{port}"
    path = parsed.raw_path_qs or "/"
    head = f"POST {path} HTTP/1.1\r\nHost: {shown}\r\nUser-Agent: {USER_AGENT}\r\n"
    if parsed.user is not None:  # http://user:password@host/: Basic auth, as aiohttp sent it
        secret = f"{parsed.user}:{parsed.password or ''}".encode("latin-1", "replace")
        head += f"Authorization: Basic {base64.b64encode(secret).decode('ascii')}\r\n"
    return _Target((scheme, host, port), head)


class _Connection(asyncio.Protocol):
    """One connection; one request at a time. ``reusable`` once an answer came complete
    and the server keeps the connection alive."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[HttpAnswer] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self._size = 0
        self._cut = False  # not 2xx: finish with the body's first bytes (ERROR_BODY_BYTES)
        self.received = False  # a byte of an answer to the current request
        self.reusable = False
        self.closed = False
        self.idle_since = 0.0

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self.close()  # bytes nobody asked for: never let them start the next answer
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadAnswer("the server switched protocols instead of answering"))
            self.close()
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"the answer is not HTTP/1.1: {exc}"))
            self.close()
        if self._answer.done():
            return
        if self._size > MAX_BODY or (self._cut and self._size):
            # too large to keep; or not 2xx, when the status and the body's first bytes
            # say why and the rest is not waited for (it may never end)
            self._finish()
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._answer is None or self._answer.done():
            return
        if self._headers_done and self._ends_at_close():
            self._finish()  # no length and not chunked: the body ran to the close
        else:
            reason = f": {exc}" if exc else ""
            self._fail(ConnectionLost(f"the server closed the connection before answering{reason}"))

    # -- httptools callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():
            self.close()  # a second answer to one request: the connection cannot be trusted
        self._headers, self._body, self._headers_done = [], [], False
        self._size, self._cut = 0, False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a chunked body's trailer field: not one of the answer's headers
        # as aiohttp reads them: UTF-8, and bytes that are not kept as they came
        self._headers.append(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        self._headers_done = True
        status = self._parser.get_status_code()
        self._cut = status >= 300

    def on_body(self, body: bytes) -> None:
        size = self._size = self._size + len(body)
        if self._cut:
            if size - len(body) < ERROR_BODY_BYTES:
                self._body.append(body[: ERROR_BODY_BYTES - size + len(body)])
            return
        if size <= MAX_BODY:  # past it, data_received fails the answer
            self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers_done = False
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self.reusable = self._parser.should_keep_alive()
        self._finish()

    # -- requests ---------------------------------------------------------------------

    async def exchange(self, request: bytes) -> HttpAnswer:
        assert self._transport is not None
        self.received = self.reusable = False
        self._answer = answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await answer

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _finish(self) -> None:
        if self._size > MAX_BODY and not self._cut:
            self._fail(BadAnswer(f"the answer's body is larger than {MAX_BODY:,} bytes"))
        elif self._answer is not None and not self._answer.done():
            headers = CIMultiDictProxy(CIMultiDict(self._headers))
            status = self._parser.get_status_code()
            self._answer.set_result(HttpAnswer(status, headers, b"".join(self._body)))

    def _fail(self, error: HttpError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    def _ends_at_close(self) -> bool:
        codings = [v for n, v in self._headers if n.lower() == "transfer-encoding"]
        if codings:
            return codings[-1].rsplit(",", 1)[-1].strip().lower() != "chunked"
        return all(name.lower() != "content-length" for name, _ in self._headers)


class _Pool:
    """The connections to one origin: idle ones, how many are open, who waits for one."""

    def __init__(self, origin: tuple[str, str, int], limit: int, tls: ssl.SSLContext | None):
        self._scheme, self._host, self._port = origin
        self._limit = limit
        self._tls = tls
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    async def acquire(self) -> tuple[_Connection, bool]:
        """A connection, and whether it was used before."""
        while self._idle:
            connection = self._idle.pop()  # the most recent: least likely closed by now
            if connection.reusable and not connection.closed:
                if time.monotonic() - connection.idle_since < IDLE_SECONDS:
                    return connection, True
                connection.close()
            self._open -= 1
        if self._open >= self._limit:
            handed = await self._wait()
            if handed is not None:
                return handed, True
            # else _gone handed us its slot: it is already counted
        else:
            self._open += 1
        try:
            return await self._connect(), False
        except BaseException:
            self._gone()
            raise

    def release(self, connection: _Connection) -> None:
        if not connection.reusable or connection.closed or self._closed:
            connection.close()
            self._gone()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        now = connection.idle_since = time.monotonic()
        idle = self._idle
        while idle and now - idle[0].idle_since >= IDLE_SECONDS:  # the oldest first
            idle.pop(0).close()
            self._open -= 1
        idle.append(connection)

    def drop_idle(self) -> None:
        """Close the idle connections (there is nobody waiting while there are some)."""
        for connection in self._idle:
            connection.close()
        self._open -= len(self._idle)
        self._idle.clear()

    def discard(self, connection: _Connection) -> None:
        connection.close()
        self._gone()

    def close(self) -> None:
        """Close the idle connections now, and those in use when they are released."""
        self._closed = True
        self.drop_idle()

    def _gone(self) -> None:
        """A connection closed: its slot goes to the first who waits, or is freed."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    async def _wait(self) -> _Connection | None:
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over as we were cancelled
                handed = waiter.result()
                if handed is None:
                    self._gone()  # the slot _gone gave us goes on to the next in line
                else:
                    self.release(handed)
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = None
        if self._scheme == "https":
            tls = self._tls or _default_tls()
        try:
            addresses = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
            # every address in turn, the next one started if one is silent for a while
            sock = await aiohappyeyeballs.start_connection(
                addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY
            )
            try:
                _, connection = await loop.create_connection(
                    _Connection, sock=sock, ssl=tls, server_hostname=self._host if tls else None
                )
            except BaseException:  # a TLS handshake that failed, or a cancel during it
                sock.close()
                raise
        except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA refuses
            where = f"{self._host}:{self._port}"
            reason = getattr(exc, "strerror", None) or exc
            raise CannotConnect(f"cannot connect to {where}: {reason}") from None
        return connection


_TLS: list[ssl.SSLContext] = []


def _default_tls() -> ssl.SSLContext:
    if not _TLS:  # made once, on first use: loading the CAs takes tens of milliseconds
        _TLS.append(ssl.create_default_context())
    return _TLS[0]


class HttpClient:
    """POSTs over pooled keep-alive connections; see the module docstring.

    Safe to share between any number of concurrent requests. ``close`` closes the idle
    connections and those in use as their answers come in; the client stays usable and
    opens new ones.
    """

    def __init__(self, connections_per_host: int = 64, ssl_context: ssl.SSLContext | None = None):
        self._limit = connections_per_host
        self._tls = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._targets: dict[str, _Target] = {}

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        """POST ``body`` with ``headers`` (Host, User-Agent and Content-Length are added).

        Raises :class:`BadRequest` when the request cannot be written, and an
        :class:`HttpError` when it got no answer (sending it again may help).
        """
        target = self._targets.get(url) or self._remember(url)
        request = _request(target.head, headers, body)
        pool = self._pools.get(target.origin) or self._pool(target.origin)
        retried = False
        while True:
            connection, reused = await pool.acquire()
            try:
                answer = await connection.exchange(request)
            except ConnectionLost:
                pool.discard(connection)
                if reused and not connection.received and not retried:
                    retried = True
                    pool.drop_idle()
                    continue  # a kept-alive connection the server had closed: a new one
                raise
            except BaseException:
                pool.discard(connection)
                raise
            pool.release(connection)
            return answer

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()

    def _remember(self, url: str) -> _Target:
        if len(self._targets) >= _MAX_TARGETS:
            self._targets.clear()
        target = self._targets[url] = _target(url)
        return target

    def _pool(self, origin: tuple[str, str, int]) -> _Pool:
        pool = self._pools[origin] = _Pool(origin, self._limit, self._tls)
        return pool


def _request(head: str, headers: Mapping[str, str], body: bytes) -> bytes:
    fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if fields.count("\n") != len(headers) or fields.count("\r") != len(headers):
        raise BadRequest("a header name or value holds a line break; it cannot be sent")
    text = f"{head}{fields}Content-Length: {len(body)}\r\n\r\n"
    return text.encode("utf-8") + body
