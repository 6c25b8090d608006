"""The spans of one event's trip, after OpenTelemetry's messaging semantic conventions.

Imported only when tracing is on (:mod:`events.observability.tracing` loads it), so
a process without tracing never imports ``opentelemetry``.

- ``send {topic}`` (PRODUCER): every publish on a bus. An event without a
  ``traceparent`` gets this span's context as its creation context.
- ``process {topic}`` (CONSUMER): a trigger or an async function handling one
  delivery of a message; its parent and its link are the event's creation context
  (``traceparent``), so every consumer of an event lands in that event's trace.
  A failed attempt is an error span; the redelivery is another span.
- ``POST`` (CLIENT): each HTTP delivery attempt to a sink; it sends its own context
  in the W3C ``traceparent``/``tracestate`` headers. Retries are sibling spans.
- ``{function}`` (SERVER): the sync function host, the child of that header, so the
  user's code runs inside the trace (``opentelemetry.trace.get_current_span()``).
- ``settle {destination}`` (CLIENT): sending an event to its dead letter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from events.cloudevent import CloudEvent
from events.errors import DeliveryError
from events.observability.traceparent import TRACEPARENT, TRACESTATE

SCOPE = "fnevents"
_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: Tracer = trace.NoOpTracer()


def use(tracer: Tracer) -> None:
    global _tracer
    _tracer = tracer


def creation_context(event: CloudEvent) -> Context | None:
    """The context in the event's ``traceparent``, or None without a valid one."""
    traceparent = event.extensions.get(TRACEPARENT)
    if not isinstance(traceparent, str):
        return None
    carrier = {TRACEPARENT: traceparent}
    tracestate = event.extensions.get(TRACESTATE)
    if isinstance(tracestate, str):
        carrier[TRACESTATE] = tracestate
    context = _PROPAGATOR.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def event_attributes(event: CloudEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.message.id": event.id,
        "cloudevents.event_id": event.id,
        "cloudevents.event_source": event.source,
        "cloudevents.event_type": event.type,
        "cloudevents.event_spec_version": event.specversion,
    }
    if event.subject is not None:
        attributes["cloudevents.event_subject"] = event.subject
    return attributes


def system_of(bus: object) -> str:
    """``messaging.system`` for a bus: its component type without ``pubsub.``."""
    kind = str(getattr(bus, "component_type", "") or type(bus).__name__)
    name = kind.removeprefix("pubsub.")
    return {"in-memory": "memory", "jetstream": "nats", "mqtt3": "mqtt"}.get(name, name)


def _in_span() -> bool:
    return trace.get_current_span().get_span_context().is_valid


def _with_context(event: CloudEvent, span: trace.Span) -> CloudEvent:
    """``event`` with ``span`` as its creation context (it had none)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return event.evolve(**carrier)


def trace_publish(bus: Any) -> None:
    """Make every ``bus.publish`` a ``send`` span (an instance attribute shadows the
    method, so the bus keeps its class, and a bus without tracing pays nothing)."""
    inner = bus.publish
    system = system_of(bus)

    async def publish(topic: str, event: CloudEvent, key: str | None = None) -> None:
        parent = None if _in_span() else creation_context(event)
        attributes = {
            **event_attributes(event),
            "messaging.system": system,
            "messaging.destination.name": topic,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
        }
        with _tracer.start_as_current_span(
            f"send {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            if TRACEPARENT not in event.extensions:
                event = _with_context(event, span)
                span.set_attribute("fnevents.trace.created", True)
            await inner(topic, event, key)

    bus.publish = publish


def consumer(
    handler: Callable[[Any], Awaitable[None]],
    *,
    system: str,
    topic: str,
    group: str,
    role: str,
) -> Callable[[Any], Awaitable[None]]:
    """``handler(message)`` inside a ``process {topic}`` CONSUMER span."""

    async def process(message: Any) -> None:
        event = message.event
        creation = creation_context(event)
        links = [_link(creation)] if creation is not None else None
        attributes = {
            **event_attributes(event),
            "messaging.system": system,
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "fnevents.role": role,
            "fnevents.delivery.attempt": message.attempt,
        }
        with _tracer.start_as_current_span(
            f"process {topic}",
            context=creation or Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ):
            await handler(message)

    return process


def function_server(handler: Callable[[Any], Awaitable[Any]], name: str) -> Callable[..., Any]:
    """An aiohttp handler of the sync function host inside a SERVER span whose parent is
    the request's W3C ``traceparent`` header, linked to the event's creation context."""

    async def serve(request: Any) -> Any:
        headers = request.headers
        parent = _PROPAGATOR.extract(headers)
        creation = _PROPAGATOR.extract(
            {
                TRACEPARENT: headers.get("ce-traceparent", ""),
                TRACESTATE: headers.get("ce-tracestate", ""),
            }
        )
        created = trace.get_current_span(creation).get_span_context()
        attributes = {
            "faas.trigger": "http",
            "faas.name": name,
            "http.request.method": request.method,
            "url.path": request.path,
        }
        if "ce-id" in headers:
            attributes["faas.invocation_id"] = headers["ce-id"]
            attributes["cloudevents.event_id"] = headers["ce-id"]
        with _tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            links=[Link(created)] if created.is_valid else None,
            attributes=attributes,
        ) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(StatusCode.ERROR, f"HTTP {response.status}")
            return response

    return serve


async def client_attempt(
    attempt: Callable[..., Awaitable[Any]],
    url: str,
    event: CloudEvent,
    headers: Mapping[str, str],
    *args: Any,
) -> Any:
    """One HTTP delivery attempt in a CLIENT span that travels in W3C headers."""
    parent = None if _in_span() else creation_context(event)
    where = urlsplit(url)
    attributes = {
        **event_attributes(event),
        "http.request.method": "POST",
        # no userinfo, no query: either may hold a secret
        "url.full": f"{where.scheme}://{where.netloc.rpartition('@')[2]}{where.path}",
        "server.address": where.hostname or "",
    }
    if where.port:
        attributes["server.port"] = where.port
    with _tracer.start_as_current_span(
        "POST", context=parent, kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        carrier = dict(headers)
        _PROPAGATOR.inject(carrier)
        try:
            return await attempt(url, carrier, *args)
        except DeliveryError as exc:
            if exc.status is not None:
                span.set_attribute("http.response.status_code", exc.status)
            span.set_attribute("error.type", str(exc.status or "DeliveryError"))
            raise


async def settle(
    call: Callable[..., Awaitable[str]],
    *args: Any,
    event: CloudEvent,
    reason: str,
    attempts: int,
) -> str:
    """A dead-lettering, ``call(*args)`` returning where the letter went, in a span."""
    with _tracer.start_as_current_span(
        "settle dead-letter",
        kind=SpanKind.CLIENT,
        attributes={
            **event_attributes(event),
            "messaging.operation.type": "settle",
            "messaging.operation.name": "dead_letter",
            "fnevents.error.reason": reason,
            "fnevents.delivery.attempts": attempts,
        },
    ) as span:
        where = await call(*args)
        span.set_attribute("messaging.destination.name", where)
        return where


def _link(context: Context) -> Link:
    return Link(trace.get_current_span(context).get_span_context())
