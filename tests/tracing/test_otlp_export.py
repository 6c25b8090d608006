"""End to end: ``fnevents run --otlp-endpoint`` exports real OTLP/HTTP protobuf to a
receiving server (aiohttp, in a thread) that decodes it with opentelemetry-proto."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.brokers.servers import free_port
from tests.e2e import processes
from tests.e2e.processes import ROOT, piped, read_until

pytestmark = pytest.mark.e2e


class Receiver:
    """An OTLP/HTTP traces endpoint: keeps every span it is sent, with its resource."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, str], Span]] = []
        self.content_types: set[str] = set()
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()

    async def _traces(self, request: web.Request) -> web.Response:
        self.content_types.add(request.content_type)
        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in message.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((resource, span) for span in scope_spans.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Receiver:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def named(self, name: str) -> list[Span]:
        return [span for _, span in list(self.spans) if span.name == name]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def test_a_run_exports_each_tick_as_one_trace_over_otlp_http(
    tmp_path: Path, receiver: Receiver
) -> None:
    folder = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", folder)
    endpoint = f"http://127.0.0.1:{receiver.port}"
    process = piped(
        "run",
        "-f",
        str(folder),
        "--port",
        "0",
        "--otlp-endpoint",
        endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="quickstart-under-test",
    )
    try:
        read_until(process, rf"tracing: OTLP over http/protobuf to {endpoint}/v1/traces")
        read_until(process, r"delivered\s+default/hello-trigger#0")
        deadline = time.monotonic() + 20
        while not receiver.named("default/hello") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        processes.finish(process)
    assert process.returncode == 0

    assert receiver.content_types == {"application/x-protobuf"}
    assert {r["service.name"] for r, _ in receiver.spans} == {"quickstart-under-test"}
    hello = receiver.named("default/hello")[0]
    assert hello.kind == Span.SPAN_KIND_SERVER
    trace = [s for _, s in receiver.spans if s.trace_id == hello.trace_id]
    by_id = {s.span_id: s for s in trace}
    client = by_id[hello.parent_span_id]
    assert (client.name, client.kind) == ("POST", Span.SPAN_KIND_CLIENT)
    process_span = by_id[client.parent_span_id]
    assert process_span.name == "process default-clock-tick"
    assert process_span.kind == Span.SPAN_KIND_CONSUMER
    send = by_id[process_span.parent_span_id]
    assert (send.name, send.kind) == ("send default-clock-tick", Span.SPAN_KIND_PRODUCER)
    assert [link.span_id for link in process_span.links] == [send.span_id]
    attributes = {a.key: a.value.string_value for a in send.attributes}
    assert attributes["messaging.system"] == "memory"
    assert attributes["cloudevents.event_type"] == "dev.fnevents.cron.fired"
