"""HTTP ingest: devices and functions POST events; fnevents' own source kind.

``POST`` a CloudEvent (binary, structured or batch mode) and it passes through
unchanged; ``POST`` plain JSON and it is wrapped (``dev.fnevents.http.request``,
``source`` the URL path, ``id`` from an ``Idempotency-Key`` header when sent, else
a hash of path and body, so a device's retry of the same request keeps its id).
Payloads are read by the rule every source follows (:mod:`sources.normalize`).

Every answer is JSON: ``{"accepted": n, "ids": [...]}``, or ``{"error": reason}``:

- ``200`` only once the bus holds every event;
- ``400`` for input that cannot become an event or could never be delivered as one
  (an invalid CloudEvent, invalid JSON, a charset that is unknown or not a text
  encoding, text that does not decode by it, JSON nested too deeply, a header that
  is not UTF-8; the input also goes to the dead letter with the reason), and for a
  request aiohttp cannot read (bad framing, a body that does not decompress);
- ``401`` for a missing or wrong bearer token (the scheme in any case, RFC 7235),
  ``404`` for another path, ``405`` for another method, ``413`` past
  ``maxBodyBytes``, ``415`` for a body that is neither a CloudEvent nor JSON,
  ``417`` for an ``Expect`` other than ``100-continue``;
- ``503`` with ``Retry-After`` if the event could not be made safe (the bus or
  sink is failing): the client should send again.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, ClassVar

import orjson
from aiohttp import HttpVersion11, web
from multidict import CIMultiDictProxy

from events.bindings.data import STRUCTURED_PREFIX, media_type
from events.bindings.http import from_http
from events.cloudevent import is_json_content_type
from events.errors import FnEventsError, quote, shorten
from events.observability import tracing
from events.serving import listen
from sources.contract import Outlet, Source
from sources.normalize import Origin, Rejected, bounded, content_ids, passthrough, wrap

RETRY_AFTER_SECONDS = "5"
#: The header of a 200 answer (as json_response wrote it); aiohttp copies it per answer.
_JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}


class HttpSource(Source):
    kind: ClassVar[str] = "http"

    def url(self) -> str:
        host = "localhost" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return f"http://{host}:{self.settings.port}{self.settings.path}"

    def describe(self) -> str:
        return f"http {self.identity.label} on {self.url()}"

    async def run(self, outlet: Outlet) -> None:
        self._outlet = outlet
        # every request taken is at settings.path (any other is a 404)
        self._content_id = content_ids(self.settings.path)
        # One route, so no router: the handler answers every request itself, in JSON.
        runner = web.ServerRunner(_JsonServer(self._answer, access_log=None))
        await runner.setup()
        try:
            fix = "give the event another 'port', or stop what holds it"
            await listen(runner, self.settings.host, self.settings.port, self.describe(), fix)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _answer(self, request: web.BaseRequest) -> web.Response:
        limit = self.settings.maxBodyBytes
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if request.headers.get("Expect"):
            await _continue(request)  # _refusal took care of any other expectation
        try:
            body = _body_at_hand(request, limit)
            if body is None:
                body = await _body(request, limit)
        except _TooLarge:
            return _error(413, f"body larger than maxBodyBytes ({limit})")
        except web.RequestPayloadError as exc:  # framing or Content-Encoding gone wrong
            cause = exc.__cause__ or exc
            return _error(400, f"the body could not be read: {shorten(str(cause))}")
        return await self._take(request, body)

    def _refusal(self, request: web.BaseRequest) -> web.Response | None:
        """The answer to a request refused before its body is read, if it is."""
        path, limit = self.settings.path, self.settings.maxBodyBytes
        if request.path != path:
            return _error(404, f"nothing is taken at {quote(request.path)}; POST events to {path}")
        if request.method != "POST":
            reason = f"method {quote(request.method)} is not taken; POST events to {path}"
            return _error(405, reason, {"Allow": "POST"})
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        if request.content_length is not None and request.content_length > limit:
            return _error(413, f"body larger than maxBodyBytes ({limit})")
        expect = request.headers.get("Expect")
        if expect and expect.lower() != "100-continue":
            return _error(417, f"'Expect: 100-continue' is understood, not {quote(expect)}")
        return None

    async def _take(self, request: web.BaseRequest, body: bytes) -> web.Response:
        outlet = self._outlet
        try:
            events = self._events(request, body)
        except Rejected as exc:
            await outlet.reject(body, exc.reason, f"http:{self._content_id(body)}")
            return _error(400, exc.reason)
        except _Unsupported as exc:
            return _error(415, str(exc))
        try:
            for event in events:
                if tracing.enabled:  # an event without trace context takes the request's
                    headers = request.headers
                    event = tracing.adopt(
                        event, headers.get("traceparent"), headers.get("tracestate")
                    )
                await outlet.emit(event)
        except FnEventsError as exc:
            return _error(
                503, f"not accepted, send again: {exc}", {"Retry-After": RETRY_AFTER_SECONDS}
            )
        ids = [event.id for event in events]
        # orjson, not json_response's stdlib json: a third of the cost of the answer
        body = orjson.dumps({"accepted": len(ids), "ids": ids})
        return web.Response(body=body, headers=_JSON_UTF8)

    def _authorized(self, request: web.BaseRequest) -> bool:
        token = self.settings.bearerToken
        if not token:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        # raw bytes that are not UTF-8 arrive as lone surrogates: they never match a token
        given = credentials.strip(" ").encode("utf-8", "surrogatepass")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode())

    def _events(self, request: web.BaseRequest, body: bytes) -> list[Any]:
        if claims_cloudevent(request.headers):
            return passthrough(from_http, request.headers, body)
        content_type = _text_header(request, "Content-Type")
        if content_type and not is_json_content_type(content_type):
            raise _Unsupported(
                f"expected a CloudEvent or JSON, got Content-Type {quote(content_type)}"
            )
        if not body.strip():
            raise Rejected("empty body: send JSON or a CloudEvent")
        key = _text_header(request, "Idempotency-Key")
        origin = Origin(
            kind="http",
            source=request.path,
            id=f"http:{key}" if key else f"http:{self._content_id(body)}",
            subject=self.identity.event,
        )
        return [wrap(body, origin, content_type or "application/json")]


def claims_cloudevent(headers: CIMultiDictProxy[str]) -> bool:
    """:func:`events.bindings.http.is_cloudevent` for the case-insensitive headers aiohttp
    parses: they are looked up, not lower-cased into a dict on every request (which was a
    tenth of the ingest's own time). Same answer (tests/fastpaths/test_p3b_ingest.py)."""
    if "ce-specversion" in headers:
        return True
    content_types = headers.getall("Content-Type", None)
    if content_types is None:
        return False
    # the last one, as is_cloudevent's dict keeps it
    return media_type(content_types[-1]).startswith(STRUCTURED_PREFIX)


class _Unsupported(ValueError):
    pass


class _TooLarge(Exception):
    pass


def _body_at_hand(request: web.BaseRequest, limit: int) -> bytes | None:
    """The body if all of it has arrived (a small one comes with the headers), else None;
    taken without a wait, as :func:`_body` would take it."""
    content = request.content
    if not content.is_eof():
        return None
    body = content.read_nowait()  # raises what the stream failed with, as readany does
    if len(body) > limit:
        raise _TooLarge
    return body


async def _body(request: web.BaseRequest, limit: int) -> bytes:
    """The body, decompressed (``Content-Encoding``), up to ``limit`` bytes."""
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


async def _continue(request: web.BaseRequest) -> None:
    """Tell a client that waits (curl does, past 1 KiB) to send the body (RFC 9110 10.1.1)."""
    if request.version >= HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp does: the answer itself has not started


def _text_header(request: web.BaseRequest, name: str) -> str | None:
    """A header that becomes part of the event; Rejected when it is not UTF-8 (aiohttp
    hands such bytes over as lone surrogates, which no event can carry)."""
    value = request.headers.get(name)
    if value is not None and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(f"the {name} header is not UTF-8 text") from None
    return value


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": bounded(reason)}),
        content_type="application/json",
        headers=headers,
    )


class _JsonAnswers(web.RequestHandler):
    """aiohttp's own answers, as JSON too: a request it cannot parse (400, 413, 431...)
    and a handler that raised (500; logged with its traceback, as aiohttp does)."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: an answer has started, too late
            raise ConnectionError("an answer was already being sent; the connection is closed")
        if status >= 500:
            self.log_exception("Error handling request", exc_info=exc)
            reason = "internal error in the HTTP ingest (logged); send again later"
        else:
            reason = f"the request could not be read: {message or exc or status}"
        answer = _error(status, reason)
        answer.force_close()
        return answer

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        if isinstance(kwargs.get("exc_info"), web.RequestPayloadError):
            # aiohttp reads what is left of a body after the answer (401, 404, 413, or a
            # 400 for a body that would not decompress) to throw it away; that it is
            # unreadable has been answered already, and is no traceback for the log
            self.log_debug(*args, **kwargs)
            return
        super().log_exception(*args, **kwargs)


class _JsonServer(web.Server):
    """An aiohttp Server whose connections answer in JSON (:class:`_JsonAnswers`)."""

    def __call__(self) -> web.RequestHandler:
        return _JsonAnswers(self, loop=self._loop, **self._kwargs)
