"""Serving one HTTP request through a WSGI app (Flask), from the aiohttp host.

Google's and OpenFunction's Python frameworks hand the function a Flask request and
turn what it returns into the response with Flask. Rather than re-derive those
rules, the host builds the Flask app those frameworks build and calls it as WSGI:
the request becomes a WSGI environ (``werkzeug.test.EnvironBuilder``), the app runs
in a worker thread (the function is plain blocking code), and its status, headers
and body become the aiohttp response. A streamed response is read whole first.

Flask is an optional dependency (``pip install 'fnevents[google]'``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from events.errors import FnEventsError

#: headers the aiohttp server sets itself from the body it sends
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class FrameworkNotAvailable(FnEventsError, ImportError):
    """A Function's framework needs a package that is not installed."""


def flask_module(function: str, framework: str) -> Any:
    """The ``flask`` module; FrameworkNotAvailable with the install command."""
    try:
        import flask
    except ImportError as exc:
        raise FrameworkNotAvailable(
            f"Function {function}: framework '{framework}' hands the function a Flask request, "
            f"and Flask is not installed: pip install 'fnevents[google]' ({exc})"
        ) from exc
    return flask


async def call_wsgi(
    app: Any, request: web.Request, extra: dict[str, Any] | None = None
) -> web.Response:
    """``app``'s answer to ``request``; ``app`` runs in a worker thread. ``extra`` is added
    to the WSGI environ (how a per-request value reaches the app's thread)."""
    environ = _environ(request, await request.read())
    environ.update(extra or {})
    status, headers, body = await asyncio.to_thread(_run, app, environ)
    code, _, reason = status.partition(" ")
    kept = CIMultiDict((k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP)
    return web.Response(status=int(code), reason=reason or None, body=body, headers=kept)


def _environ(request: web.Request, body: bytes) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
    builder = EnvironBuilder(
        path=request.raw_path.partition("?")[0],  # still percent-encoded, as WSGI expects
        method=request.method,
        headers=headers,
        data=body,
        query_string=request.query_string,
        base_url=f"{request.scheme}://{request.host}",
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    environ["REMOTE_ADDR"] = request.remote or ""
    environ["SERVER_PROTOCOL"] = f"HTTP/{request.version.major}.{request.version.minor}"
    return environ


def _run(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    from werkzeug.test import run_wsgi_app

    chunks, status, headers = run_wsgi_app(app, environ, buffered=True)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return status, list(headers.items()), body
