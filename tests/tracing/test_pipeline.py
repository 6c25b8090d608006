"""The span tree of events on their way: HTTP ingest -> Redis bus -> trigger -> a sync
function, an async function, and a failing sink that retries and dead-letters.

A real Redis, real HTTP servers, the real runtime; spans are read back from the
SDK's InMemorySpanExporter.
"""

from __future__ import annotations

import io
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.observability import tracing
from events.observability.console import Console
from tests.brokers.servers import free_port, wait_until_listening
from tests.helpers import until
from tests.tracing.seen import SEEN
from tests.tracing.tree import render

pytestmark = pytest.mark.redis

TIMEOUT = 20.0
DEVICE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
DEVICE_SPAN = "00f067aa0ba902b7"
DEVICE_TRACEPARENT = f"00-{DEVICE_TRACE}-{DEVICE_SPAN}-01"
FUNCTION_API = "core.openfunction.io/v1beta2"

FUNCTIONS = """
    from opentelemetry import trace

    from tests.tracing.seen import SEEN as seen

    def _record(where, event):
        context = trace.get_current_span().get_span_context()
        attributes = event.get_attributes()
        trace_id = f"{context.trace_id:032x}"
        seen.append((where, attributes["id"], attributes.get("traceparent"), trace_id))

    def echo(event):
        _record("echo", event)

    def work(event):
        _record("work", event)

    def broken(event):
        raise RuntimeError("this sink always fails")
"""


def manifests(redis: str, uid: str, port: int) -> str:
    return f"""
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: eventbus}}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {{name: redisHost, value: "{redis}"}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {{name: default}}
spec: {{component: eventbus}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: ingest-{uid}}}
spec:
  eventBus: default
  http:
    orders: {{port: {port}, host: 127.0.0.1}}
---
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {{name: echo-{uid}}}
spec: {{source: functions.py, target: echo}}
---
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {{name: broken-{uid}}}
spec: {{source: functions.py, target: broken}}
---
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {{name: work-{uid}}}
spec:
  source: functions.py
  target: work
  input: {{topic: work-{uid}}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: flow-{uid}}}
spec:
  eventBus: default
  inputs:
    orders: {{eventSource: ingest-{uid}, event: orders}}
  subscribers:
    - condition: orders
      sink: {{ref: {{apiVersion: {FUNCTION_API}, kind: Function, name: echo-{uid}}}}}
    - condition: orders
      topic: work-{uid}
    - condition: orders
      sink: {{ref: {{apiVersion: {FUNCTION_API}, kind: Function, name: broken-{uid}}}}}
      delivery: {{retry: 1, backoffDelay: 10ms}}
"""


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.shutdown()


class App:
    def __init__(self, runtime: Runtime, uid: str, url: str) -> None:
        self.runtime, self.uid, self.url = runtime, uid, url
        self.ids: set[str] = set()

    async def post(self, headers: dict[str, str]) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, json={"order": uuid.uuid4().hex}, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
            event_id = (await response.json())["ids"][0]
        self.ids.add(event_id)
        return event_id

    @property
    def seen(self) -> list[tuple[str, str, str | None, str]]:
        return [s for s in SEEN if s[1] in self.ids]


@pytest.fixture
async def app(tmp_path: Path, redis_broker, exporter: InMemorySpanExporter) -> AsyncIterator[App]:
    uid = uuid.uuid4().hex[:8]
    port = free_port()
    (tmp_path / "functions.py").write_text(textwrap.dedent(FUNCTIONS))
    path = tmp_path / "app.yaml"
    path.write_text(manifests(redis_broker.address, uid, port))
    runtime = Runtime(load_catalog([str(path)], []), Console(stream=io.StringIO()))
    await runtime.start()
    try:
        await wait_until_listening(port)
        yield App(runtime, uid, f"http://127.0.0.1:{port}/")
    finally:
        await runtime.stop(drain_timeout=2)


def one(spans: list[ReadableSpan], name: str, **attributes: object) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, f"{len(found)} spans named {name} {attributes}:\n{render(spans)}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def spans_until_settled(exporter: InMemorySpanExporter, app: App) -> list[ReadableSpan]:
    def done() -> bool:
        names = [s.name for s in exporter.get_finished_spans()]
        # the trigger's process span ends last: after every subscriber settled
        return (
            "settle dead-letter" in names
            and any(n.startswith("process default-ingest-") for n in names)
            and any(n.startswith("process work-") for n in names)
            and len(app.seen) >= 2
        )

    await until(done, "the event reached both functions and the dead letter", TIMEOUT)
    return list(exporter.get_finished_spans())


async def test_an_incoming_traceparent_is_kept_and_every_hop_joins_its_trace(
    app: App, exporter: InMemorySpanExporter
) -> None:
    uid = app.uid
    event_id = await app.post({"traceparent": DEVICE_TRACEPARENT, "tracestate": "dev=1"})
    spans = await spans_until_settled(exporter, app)
    print(render(spans))

    # one trace for everything, the device's
    assert {f"{s.context.trace_id:032x}" for s in spans} == {DEVICE_TRACE}
    # the functions ran inside it and saw the event's traceparent exactly as the device sent it
    assert sorted(w for w, *_ in app.seen) == ["echo", "work"]
    for _, seen_id, traceparent, trace_id in app.seen:
        assert (seen_id, traceparent, trace_id) == (event_id, DEVICE_TRACEPARENT, DEVICE_TRACE)

    source_topic = f"default-ingest-{uid}-orders"
    device = int(DEVICE_SPAN, 16)
    send = one(spans, f"send {source_topic}")
    assert send.kind is SpanKind.PRODUCER and parent_of(send) == device
    assert send.attributes["messaging.system"] == "redis"
    assert send.attributes["messaging.destination.name"] == source_topic
    assert send.attributes["messaging.message.id"] == event_id
    assert send.attributes["cloudevents.event_type"] == "dev.fnevents.http.request"
    assert "fnevents.trace.created" not in send.attributes  # it had a context: not replaced

    process = one(spans, f"process {source_topic}")
    assert process.kind is SpanKind.CONSUMER
    assert parent_of(process) == device  # the creation context, which is also linked
    assert [link.context.span_id for link in process.links] == [device]
    assert process.attributes["messaging.consumer.group.name"] == f"default-flow-{uid}"
    assert process.attributes["fnevents.role"] == f"trigger/default/flow-{uid}"

    posts = [s for s in spans if s.name == "POST" and parent_of(s) == process.context.span_id]
    echo_post = [s for s in posts if s.attributes.get("url.full", "").endswith("/")]
    assert len(posts) == 3  # echo once, broken twice (retry: 1)
    assert all(s.kind is SpanKind.CLIENT for s in echo_post)
    failed = [s for s in posts if s.attributes.get("http.response.status_code") == 500]
    assert len(failed) == 2 and all(not s.status.is_ok for s in failed)

    echo = one(spans, f"default/echo-{uid}")
    assert echo.kind is SpanKind.SERVER
    assert parent_of(echo) in {s.context.span_id for s in posts if s not in failed}
    assert [link.context.span_id for link in echo.links] == [device]
    broken = [s for s in spans if s.name == f"default/broken-{uid}"]
    assert len(broken) == 2 and all(not s.status.is_ok for s in broken)
    assert {parent_of(s) for s in broken} == {s.context.span_id for s in failed}

    forward = one(spans, f"send work-{uid}")
    assert parent_of(forward) == process.context.span_id
    work = one(spans, f"process work-{uid}")
    assert work.attributes["fnevents.role"] == f"function/default/work-{uid}"
    assert parent_of(work) == device and [lk.context.span_id for lk in work.links] == [device]

    settle = one(spans, "settle dead-letter")
    assert parent_of(settle) == process.context.span_id
    assert settle.attributes["fnevents.delivery.attempts"] == 2
    letter = one(spans, f"send default-flow-{uid}-deadletter")
    assert parent_of(letter) == settle.context.span_id


async def test_without_an_incoming_context_the_first_send_creates_it(
    app: App, exporter: InMemorySpanExporter
) -> None:
    uid = app.uid
    await app.post({})
    spans = await spans_until_settled(exporter, app)
    print(render(spans))

    send = one(spans, f"send default-ingest-{uid}-orders")
    assert send.parent is None and send.attributes["fnevents.trace.created"] is True
    context = send.context
    created = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert {s.context.trace_id for s in spans} == {send.context.trace_id}
    assert {traceparent for _, _, traceparent, _ in app.seen} == {created}
    process = one(spans, f"process default-ingest-{uid}-orders")
    assert parent_of(process) == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]


async def test_an_events_own_traceparent_wins_over_the_request_header_on_every_hop(
    app: App, exporter: InMemorySpanExporter
) -> None:
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event_id = f"own-{uuid.uuid4().hex}"
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/devices/7",
        "ce-type": "order.placed",
        "ce-traceparent": own,
        "traceparent": DEVICE_TRACEPARENT,  # the hop's, not the event's: does not replace it
    }
    assert await app.post(headers) == event_id
    await spans_until_settled(exporter, app)
    assert sorted(app.seen) == [
        ("echo", event_id, own, "0af7651916cd43dd8448eb211c80319c"),
        ("work", event_id, own, "0af7651916cd43dd8448eb211c80319c"),
    ]
