"""Building the SDK's tracer provider and exporter from the ``OTEL_*`` settings.

Imported only when tracing is asked for (see :mod:`events.observability.tracing`).
"""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

DEFAULT_SERVICE_NAME = "fnevents"


def provider(exporter_name: str, protocol: str, endpoint: str | None) -> tuple[TracerProvider, str]:
    """A tracer provider exporting as asked, and a line saying where spans go.

    The sampler (``OTEL_TRACES_SAMPLER``), the resource (``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``) and the batch settings (``OTEL_BSP_*``) are read by
    the SDK from the environment.
    """
    resource = Resource.create()
    if resource.attributes.get(SERVICE_NAME, "").startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    traces = TracerProvider(resource=resource)
    if exporter_name == "console":
        traces.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        return traces, "tracing: spans printed to stdout (OTEL_TRACES_EXPORTER=console)"
    exporter, where = _otlp(protocol, endpoint)
    traces.add_span_processor(BatchSpanProcessor(exporter))
    return traces, f"tracing: OTLP over {protocol} to {where}"


def _otlp(protocol: str, endpoint: str | None) -> tuple[SpanExporter, str]:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        return exporter, endpoint or "the OTEL_EXPORTER_OTLP_* endpoint (default localhost:4317)"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    if endpoint:
        # a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the signal's path is appended
        url = endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=url), url
    exporter = HttpExporter()
    return exporter, getattr(exporter, "_endpoint", "the OTEL_EXPORTER_OTLP_* endpoint")
