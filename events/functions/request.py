"""What the sync host makes of an HTTP request: always one (or a batch of) CloudEvent(s).

A request that claims to be a CloudEvent (a ``ce-specversion`` header or a
CloudEvents ``Content-Type``) is decoded as one, and an invalid one is refused
with the reason (:class:`~events.errors.InvalidCloudEvent`). Any other request
is a **plain request**, as OpenFunction's HTTP functions receive, and becomes a
CloudEvent so a function has one signature either way:

- ``type`` ``dev.fnevents.http.request``; ``source`` ``/functions/{ns}/{name}``;
  ``subject`` the request path (``/`` or ``/orders/7``);
- ``id`` the ``Idempotency-Key`` header when sent (so a client's retry keeps
  its id), else a fresh UUID;
- ``data``: none for an empty body; for a declared type, the rule every source and
  binding follows (:func:`events.bindings.data.decode_payload`): JSON parsed, text
  (``text/*``, XML, any ``charset``) decoded with its declared charset, any other
  type ``bytes``; with no ``Content-Type``, JSON if it parses, else UTF-8 text,
  else bytes. ``datacontenttype`` is the declared type (JSON in another charset
  than UTF-8 re-declared ``charset=utf-8``) or the detected one. Refused with the
  reason, as every source refuses them: invalid JSON, a charset that is unknown or
  not a text encoding, text that does not decode by it, JSON nested too deeply to
  deliver.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from events.bindings import data as _data
from events.bindings.http import from_http, is_cloudevent
from events.cloudevent import CloudEvent, now_rfc3339

REQUEST_TYPE = "dev.fnevents.http.request"


def request_events(
    headers: Mapping[str, str], body: bytes, path: str, source: str
) -> list[CloudEvent]:
    """The events a request carries. Raises InvalidCloudEvent with the reason."""
    if is_cloudevent(headers):
        return from_http(headers, body)
    return [plain_request(headers, body, path, source)]


def plain_request(headers: Mapping[str, str], body: bytes, path: str, source: str) -> CloudEvent:
    lower = {name.lower(): value for name, value in headers.items()}
    data, content_type = _payload(body, lower.get("content-type"))
    key = lower.get("idempotency-key")
    if key and not key.isascii():
        _data.utf8("id", key)  # bytes that are not UTF-8 arrive as lone surrogates: refused
    return CloudEvent(
        id=key or str(uuid.uuid4()),
        source=source,
        type=REQUEST_TYPE,
        subject=path or "/",
        time=now_rfc3339(),
        datacontenttype=content_type,
        data=data,
    )


def _payload(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    if not body:
        return None, None
    if content_type:
        return _data.decode_payload(body, content_type)
    return _data.sniff_data(body)
