"""Trace context on the event: taken from the transport only when the event has none,
never replaced; Dapr's envelope fields (traceparent, tracestate, legacy traceid) read
and written, through the Dapr sidecar TEST DOUBLE (tests/dapr_sidecar, not Dapr)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import dapr.proto.runtime.v1 as api
import orjson
import pytest
from google.protobuf.struct_pb2 import Struct

from events.brokers.dapr.bus import DaprSidecarBus
from events.brokers.dapr.codec import from_topic_event, trace_metadata
from events.brokers.dapr.settings import DaprSettings
from events.bus.envelope import decode, encode
from events.cloudevent import CloudEvent
from events.observability.traceparent import adopt, adopt_pairs, is_valid
from events.observability.tracing import TracingError, configure, wanted
from tests.dapr_sidecar import RunningSidecar, running
from tests.helpers import received

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
EVENT = CloudEvent(id="e1", source="/s", type="t", data={"n": 1})


def test_an_event_without_context_takes_the_transports() -> None:
    taken = adopt(EVENT, TRACEPARENT, "vendor=1")
    assert taken.extensions == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    assert adopt(EVENT, TRACEPARENT).extensions == {"traceparent": TRACEPARENT}


def test_an_event_with_context_keeps_it_whatever_the_transport_says() -> None:
    own = EVENT.evolve(traceparent=TRACEPARENT)
    assert adopt(own, OTHER, "x=2") is own
    assert adopt_pairs(own, [("traceparent", OTHER.encode())]) is own


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nonsense",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        TRACEPARENT + "-extra",  # version 00 has nothing after the flags
        TRACEPARENT.upper(),
        b"\xff\xfe",
    ],
)
def test_an_invalid_transport_value_is_ignored(value: object) -> None:
    assert adopt(EVENT, value) is EVENT
    assert not is_valid(value)


def test_kafka_headers_and_mqtt_user_properties_are_read_by_name() -> None:
    headers = [("content-type", b"application/json"), ("TraceParent", TRACEPARENT.encode())]
    assert adopt_pairs(EVENT, headers).extensions["traceparent"] == TRACEPARENT
    properties = [("traceparent", TRACEPARENT), ("tracestate", "a=1")]
    assert adopt_pairs(EVENT, properties).extensions["tracestate"] == "a=1"


# --- Dapr's envelope --------------------------------------------------------------------


def test_the_native_envelope_writes_the_legacy_traceid_and_reads_it_back() -> None:
    event = EVENT.evolve(traceparent=TRACEPARENT, tracestate="a=1")
    raw = encode(event, "orders", "eventbus")
    assert orjson.loads(raw)["traceid"] == TRACEPARENT
    assert decode(raw, topic="orders", pubsub_name="eventbus", fallback_id="x") == event


def test_a_lone_legacy_traceid_becomes_the_traceparent() -> None:
    document = {"specversion": "1.0", "id": "e1", "source": "/s", "type": "t"}
    raw = orjson.dumps({**document, "traceid": TRACEPARENT})
    event = decode(raw, topic="orders", pubsub_name="eventbus", fallback_id="x")
    assert event.extensions == {"traceparent": TRACEPARENT}


def topic_event(**extensions: object) -> api.TopicEventRequest:
    struct = Struct()
    struct.update({"topic": "orders", "pubsubname": "eventbus", **extensions})
    return api.TopicEventRequest(
        id="e1", source="/s", type="t", spec_version="1.0", extensions=struct
    )


def test_the_sidecars_trace_fields_are_read_as_the_extension() -> None:
    both = from_topic_event(topic_event(traceid=TRACEPARENT, traceparent=TRACEPARENT))
    assert both.extensions == {"traceparent": TRACEPARENT}
    legacy = from_topic_event(topic_event(traceid=TRACEPARENT, tracestate="a=1"))
    assert legacy.extensions == {"traceparent": TRACEPARENT, "tracestate": "a=1"}
    # what a sidecar without tracing writes: empty fields, which are no context at all
    empty = from_topic_event(topic_event(traceid="", traceparent="", tracestate=""))
    assert empty.extensions == {}


def test_a_publish_hands_the_events_context_to_the_sidecar() -> None:
    assert trace_metadata(EVENT) == ()
    with_state = EVENT.evolve(traceparent=TRACEPARENT, tracestate="a=1")
    assert trace_metadata(with_state) == (("traceparent", TRACEPARENT), ("tracestate", "a=1"))


@pytest.fixture(scope="module")
def sidecar() -> Iterator[RunningSidecar]:
    with running() as started:
        yield started


@pytest.fixture
async def bus(sidecar: RunningSidecar) -> AsyncIterator[DaprSidecarBus]:
    settings = {"pubsubName": sidecar.pubsub_name, "grpcEndpoint": sidecar.grpc_address}
    async with DaprSidecarBus(DaprSettings.model_validate(settings)) as started:
        yield started


@pytest.mark.dapr
async def test_trace_fields_round_trip_through_the_sidecar(bus: DaprSidecarBus) -> None:
    topic = f"trace-{uuid.uuid4().hex[:12]}"
    event = EVENT.evolve(traceparent=TRACEPARENT, tracestate="congo=t61rcWkgMzE")
    async with await bus.subscribe(topic, "g") as subscription:
        await bus.publish(topic, event)
        arrived = await received(subscription, 5.0)
    assert arrived == event
    assert arrived.extensions == {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}


# --- off costs no import ----------------------------------------------------------------


def test_without_tracing_no_opentelemetry_module_is_imported() -> None:
    code = (
        "import sys, os\n"
        "for name in list(os.environ):\n"
        "    if name.startswith('OTEL_'): del os.environ[name]\n"
        "from events.cli import main\n"
        "from events.app import runtime\n"
        "from events.observability import tracing\n"
        "assert tracing.configure() is None and not tracing.enabled\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "endpoint", "on"),
    [
        ({}, None, False),
        ({}, "http://collector:4318", True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, None, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, None, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None, False),
        ({"OTEL_SDK_DISABLED": "true"}, "http://collector:4318", False),
    ],
)
def test_tracing_is_on_only_when_asked_for(env: dict, endpoint: str | None, on: bool) -> None:
    assert wanted(env, endpoint) is on


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin'"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
    ],
)
def test_a_setting_we_cannot_honour_is_named(env: dict, named: str) -> None:
    with pytest.raises(TracingError, match=named):
        configure(env)
