"""POSTing CloudEvents to HTTP sinks, and deciding what a response means.

One pooled keep-alive session serves every sink. Responses are classified once,
here, into success or a :class:`DeliveryError` that says whether a retry may
help; the retry loop itself is in :mod:`triggers.policy`.

Retried: connection errors, timeouts, 408, 429 and every 5xx. Not retried: any
other 4xx (the sink understood and refused; sending again will not change that).
"""

from __future__ import annotations

import email.utils
import time

import aiohttp

from events.bindings.http import to_binary
from events.cloudevent import CloudEvent
from events.errors import DeliveryError

RETRIED_STATUSES = frozenset({408, 429})
BODY_EXCERPT = 1024


class SinkClient:
    """Sends events to HTTP sinks in CloudEvents binary mode."""

    def __init__(self, connections_per_host: int = 64) -> None:
        self._connector_limit = connections_per_host
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit_per_host=self._connector_limit)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def post(self, url: str, event: CloudEvent) -> None:
        """One attempt. Raises DeliveryError unless the sink answered 2xx."""
        headers, body = to_binary(event)
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    await response.read()
                    return
                excerpt = (await response.content.read(BODY_EXCERPT)).decode("utf-8", "replace")
                raise _status_error(url, response.status, excerpt, response.headers)
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"cannot reach {url}: {exc}", retriable=True) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _status_error(url: str, status: int, excerpt: str, headers) -> DeliveryError:
    retriable = status >= 500 or status in RETRIED_STATUSES
    return DeliveryError(
        f"{url} answered HTTP {status}" + ("" if retriable else " (not retried: a 4xx is final)"),
        status=status,
        body_excerpt=excerpt,
        retriable=retriable,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
