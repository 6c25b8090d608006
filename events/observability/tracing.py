"""OpenTelemetry tracing: off by default, configured by the standard ``OTEL_*`` variables.

**Off** (the default) this module imports no ``opentelemetry`` code and every hop
pays one module attribute read (``tracing.enabled``) or nothing at all: the
wrappers below are installed when a role is built, only when tracing is on.

**On** when any of these is set (or ``fnevents run --otlp-endpoint URL``):

- ``OTEL_TRACES_EXPORTER``: ``otlp`` or ``console`` (``none`` keeps it off);
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``.

``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` pick
``http/protobuf`` (the default) or ``grpc``; ``OTEL_SDK_DISABLED=true`` turns it
all off. The SDK itself reads the rest: ``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_SERVICE_NAME`` (default ``fnevents``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``, and the exporter's
``OTEL_EXPORTER_OTLP_*`` headers, timeouts and certificates. Spans are in
:mod:`events.observability.spans`; trace context on events in
:mod:`events.observability.traceparent`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from events.errors import FnEventsError
from events.observability.traceparent import adopt, adopt_pairs

#: Read once per hop when tracing could apply; True only after configure() or install().
enabled = False
_provider: Any = None
_spans: Any = None

PROTOCOLS = ("http/protobuf", "grpc")
EXPORTERS = ("otlp", "console", "none")
INSTALL_HINT = "pip install 'fnevents[tracing]'"

__all__ = ["adopt", "adopt_pairs", "configure", "enabled", "install", "shutdown", "wanted"]


class TracingError(FnEventsError, ValueError):
    """Tracing is asked for but cannot be set up (a bad setting, or the packages missing)."""


def wanted(env: Mapping[str, str], endpoint: str | None = None) -> bool:
    """Whether the settings ask for tracing (nothing is imported to tell)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        endpoint
        or exporter
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(env: Mapping[str, str] | None = None, endpoint: str | None = None) -> str | None:
    """Turn tracing on if the settings ask for it; return a line saying where spans go.

    ``endpoint`` (``--otlp-endpoint``) is the collector's base URL, as
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is, and wins over it. Raises TracingError for a
    setting we cannot honour, or when the OpenTelemetry packages are not installed.
    """
    env = os.environ if env is None else env
    if not wanted(env, endpoint):
        return None
    exporter_name = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
    if exporter_name not in EXPORTERS:
        raise TracingError(
            f"OTEL_TRACES_EXPORTER={exporter_name!r} is not supported; use one of "
            f"{', '.join(EXPORTERS)}"
        )
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in PROTOCOLS:
        raise TracingError(
            f"OTLP protocol {protocol!r} is not supported (OTEL_EXPORTER_OTLP_PROTOCOL); "
            f"use {' or '.join(PROTOCOLS)}"
        )
    try:
        from events.observability import setup
    except ImportError as exc:
        raise TracingError(
            f"tracing is configured but OpenTelemetry is not installed ({exc.name}): "
            f"{INSTALL_HINT}, or unset the OTEL_* variables"
        ) from None
    provider, where = setup.provider(exporter_name, protocol, endpoint)
    install(provider, set_global=True)
    return where


def install(provider: Any, set_global: bool = False) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``); tests hand in their own."""
    global enabled, _provider, _spans
    from events.observability import spans

    spans.use(provider.get_tracer(spans.SCOPE))
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)  # so a function's own spans join the trace
    _provider, _spans, enabled = provider, spans, True


def shutdown() -> None:
    """Export what is buffered and turn tracing off again."""
    global enabled, _provider, _spans
    provider, _provider, enabled = _provider, None, False
    if _spans is not None:
        from opentelemetry import trace

        _spans.use(trace.NoOpTracer())
        _spans = None
    if provider is not None:
        provider.shutdown()


# --- the hooks; each is called only while ``enabled`` is True ---------------------------


def trace_publish(bus: Any) -> None:
    _spans.trace_publish(bus)


def consumer(handler: Any, bus: Any, topic: str, group: str, role: str) -> Any:
    return _spans.consumer(
        handler, system=_spans.system_of(bus), topic=topic, group=group, role=role
    )


def function_server(handler: Any, name: str) -> Any:
    return _spans.function_server(handler, name)


def client_attempt(attempt: Any, url: str, event: Any, headers: Any, *args: Any) -> Any:
    return _spans.client_attempt(attempt, url, event, headers, *args)


def settle(call: Any, *args: Any, event: Any, reason: str, attempts: int) -> Any:
    return _spans.settle(call, *args, event=event, reason=reason, attempts=attempts)
