"""POSTing CloudEvents to HTTP sinks, and deciding what a response means.

**Modes.** An event is POSTed in CloudEvents binary mode by default (``ce-*``
headers, ``Content-Type`` is the event's ``datacontenttype``, the body is the
data). A :class:`~events.manifests.extensions.DeliverySpec` with ``format:
structured`` (or Knative's ``json``) POSTs the whole event as
``application/cloudevents+json`` instead.

**Connections.** One :class:`SinkClient` per process serves every sink, through
one :class:`~events.delivery.http_client.HttpClient` that keeps connections alive and
pools them (``connections_per_host``, default 64, per host:port). A sink that closes its
connections only costs a reconnect; requests above the pool's size wait for a
free connection (each subscriber's own ``maxInFlight`` limit is applied before
that, in :mod:`triggers.subscriber`).

**Statuses.** Responses are classified once, here, into success or a
:class:`DeliveryError` that says whether a retry may help; the retry loop itself
is in :mod:`events.delivery.policy`.

- 2xx: delivered.
- Retried: connection errors, the per-attempt timeout, 408, 429 and every 5xx.
- Not retried: any other status (every other 4xx, and 3xx: redirects are not
  followed for a POST): the sink understood and refused, so sending the
  same request again will not change that; the event goes to the dead letter.
  Nor is a request that cannot be written (a line break in a header).
- ``Retry-After`` (delta-seconds or an HTTP date) on a retried status is parsed
  into ``retry_after``; the policy waits at least that long before the next
  attempt, capped at 60 s.

**Replies.** A 2xx answer that is itself a CloudEvent (binary ``ce-*`` headers,
or ``application/cloudevents+json`` / a batch) comes back as a
:class:`SinkReply`; the subscriber publishes it to its reply topic. A 2xx answer
that is not a CloudEvent is read and ignored (the usual case). An answer that
claims to be a CloudEvent but does not decode gives a :class:`SinkReply` with a
``problem`` and no events: the delivery still succeeded.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

from events.bindings.http import from_http, to_binary, to_structured
from events.cloudevent import CloudEvent
from events.delivery.http_client import (
    ERROR_BODY_BYTES,
    BadRequest,
    HttpAnswer,
    HttpClient,
    HttpError,
)
from events.errors import DeliveryError, InvalidCloudEvent
from events.observability import tracing

RETRIED_STATUSES = frozenset({408, 429})
BODY_EXCERPT = ERROR_BODY_BYTES  # what the client keeps of an error answer
_CLOUDEVENTS_MEDIA = "application/cloudevents"


@dataclass(frozen=True, slots=True)
class SinkReply:
    """What a sink answered with, when its 2xx answer claims to be CloudEvents.

    ``events`` holds the decoded events (one, or several for a batch); ``problem``
    says why an answer that claimed to be a CloudEvent could not be decoded.
    """

    events: tuple[CloudEvent, ...] = ()
    problem: str | None = None


class SinkClient:
    """Sends events to HTTP sinks (see the module docstring for modes and statuses).

    Safe to share between any number of concurrent deliveries; ``close`` is
    idempotent, and a closed client opens new connections on the next ``post``.
    """

    def __init__(self, connections_per_host: int = 64) -> None:
        self._http = HttpClient(connections_per_host)

    async def post(
        self, url: str, event: CloudEvent, structured: bool = False, seconds: float | None = None
    ) -> SinkReply | None:
        """One attempt, given up after ``seconds`` (connecting, waiting for a pooled
        connection and reading the answer included).

        Returns the sink's CloudEvents reply (None when it answered without one);
        raises :class:`DeliveryError` unless the sink answered 2xx in time.
        """
        headers, body = to_structured(event) if structured else to_binary(event)
        if tracing.enabled:  # a CLIENT span per attempt, sent on in W3C headers
            return await tracing.client_attempt(self._attempt, url, event, headers, body, seconds)
        return await self._attempt(url, headers, body, seconds)

    async def _attempt(
        self, url: str, headers: Mapping[str, str], body: bytes, seconds: float | None
    ) -> SinkReply | None:
        try:
            if not seconds:  # None, or 0 which the manifest allows: no limit, as it always was
                answer = await self._http.post(url, headers, body)
            else:
                async with asyncio.timeout(seconds):
                    answer = await self._http.post(url, headers, body)
        except TimeoutError:
            within = "in time" if seconds is None else f"within {seconds:g}s"
            raise DeliveryError(f"no answer from {url} {within}", retriable=True) from None
        except HttpError as exc:
            raise DeliveryError(f"cannot reach {url}: {exc}", retriable=True) from None
        except BadRequest as exc:
            raise DeliveryError(f"cannot send to {url}: {exc}") from None
        status = answer.status
        if 200 <= status < 300:
            return _reply(answer)
        excerpt = answer.body.decode("utf-8", "replace")  # its first BODY_EXCERPT bytes
        raise _status_error(url, status, excerpt, answer.headers)

    async def close(self) -> None:
        await self._http.close()


def _reply(answer: HttpAnswer) -> SinkReply | None:
    headers, body = answer.headers, answer.body
    content_type = headers.get("Content-Type", "")
    if "ce-specversion" not in headers and not content_type.startswith(_CLOUDEVENTS_MEDIA):
        return None  # a plain answer (the usual 204, or a body for someone else): ignored
    try:
        return SinkReply(events=tuple(from_http(headers, body)))
    except InvalidCloudEvent as exc:
        return SinkReply(problem=str(exc))
    except ValueError as exc:  # a structured body that is not JSON at all
        return SinkReply(problem=f"the body does not decode: {exc}")


def _status_error(url: str, status: int, excerpt: str, headers: Mapping[str, str]) -> DeliveryError:
    retriable = status >= 500 or status in RETRIED_STATUSES
    final = " (not retried: the sink refused the event, sending it again will not help)"
    return DeliveryError(
        f"{url} answered HTTP {status}" + ("" if retriable else final),
        status=status,
        body_excerpt=excerpt,
        retriable=retriable,
        retry_after=parse_retry_after(headers.get("Retry-After")) if retriable else None,
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
