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
  request that cannot be read (bad framing, a body that does not decompress);
- ``401`` for a missing or wrong bearer token (the scheme in any case, RFC 7235),
  ``404`` for another path, ``405`` for another method, ``413`` past
  ``maxBodyBytes`` (decompressed), ``415`` for a body that is neither a CloudEvent
  nor JSON or a ``Content-Encoding`` other than gzip, deflate and identity, ``417``
  for an ``Expect`` other than ``100-continue``, ``414``/``431`` for a request line or
  head past the limits (8,190 bytes a line, 128 header lines, 64 KiB);
- ``503`` with ``Retry-After`` if the event could not be made safe (the bus or
  sink is failing): the client should send again.

The server is :mod:`sources.http_server` (keep-alive, pipelining, 100-continue).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, ClassVar

import orjson
from multidict import MultiMapping

from events.bindings.data import STRUCTURED_PREFIX, media_type
from events.bindings.http import from_http
from events.cloudevent import is_json_content_type
from events.errors import FnEventsError, quote
from events.observability import tracing
from events.serving import binding
from sources.contract import Outlet, Source
from sources.http_server import Answer, Answering, Request, Server
from sources.normalize import Origin, Rejected, bounded, content_ids, passthrough, wrap

RETRY_AFTER_SECONDS = "5"
_JSON_UTF8 = "application/json; charset=utf-8"  # a 200's, as aiohttp's json_response wrote
_JSON = "application/json"


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
        answering = Answering(self._refusal, self._take, _error, self.settings.maxBodyBytes)
        server = Server(answering)
        try:
            fix = "give the event another 'port', or stop what holds it"
            with binding(self.describe(), self.settings.host, self.settings.port, fix):
                await server.start(self.settings.host, self.settings.port)
            await asyncio.Event().wait()
        finally:
            await server.close()

    def _refusal(self, request: Request) -> Answer | None:
        """The answer to a request refused on its head, if it is; a body too large for
        ``maxBodyBytes`` the server refuses itself."""
        path = self.settings.path
        if request.path != path:
            return _error(404, f"nothing is taken at {quote(request.path)}; POST events to {path}")
        if request.method != "POST":
            reason = f"method {quote(request.method)} is not taken; POST events to {path}"
            return _error(405, reason, {"Allow": "POST"})
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        expect = request.headers.get("Expect")
        if expect and expect.lower() != "100-continue":
            return _error(417, f"'Expect: 100-continue' is understood, not {quote(expect)}")
        return None

    async def _take(self, request: Request) -> Answer:
        outlet, body = self._outlet, request.body
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
        return Answer(200, orjson.dumps({"accepted": len(ids), "ids": ids}), _JSON_UTF8)

    def _authorized(self, request: Request) -> bool:
        token = self.settings.bearerToken
        if not token:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        # raw bytes that are not UTF-8 arrive as lone surrogates: they never match a token
        given = credentials.strip(" ").encode("utf-8", "surrogatepass")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode())

    def _events(self, request: Request, body: bytes) -> list[Any]:
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


def claims_cloudevent(headers: MultiMapping[str]) -> bool:
    """:func:`events.bindings.http.is_cloudevent` for case-insensitive headers (a
    request's): they are looked up, not lower-cased into a dict on every request (which was a
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


def _text_header(request: Request, name: str) -> str | None:
    """A header that becomes part of the event; Rejected when it is not UTF-8 (the server
    hands such bytes over as lone surrogates, which no event can carry)."""
    value = request.headers.get(name)
    if value is not None and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(f"the {name} header is not UTF-8 text") from None
    return value


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, orjson.dumps({"error": bounded(reason)}), _JSON, headers)
