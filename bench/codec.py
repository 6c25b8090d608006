"""Our HTTP codecs against the official ``cloudevents`` SDK 2.x on the same events.

Both sides get the same event (the SDK's built with ``events.bindings.sdk.to_sdk``)
and each decoder reads what its own encoder wrote. Compared entry points:

* encode binary: ours ``http.to_binary(event)``; SDK ``to_binary(event, JSONFormat())``
* encode structured: ours ``http.to_structured(event)``; SDK ``to_structured(event, fmt)``
* decode binary and structured: ours ``http.from_http(headers, body)``; SDK
  ``from_http(HTTPMessage, fmt, CloudEvent)``

The SDK functions are ``cloudevents.core.bindings.http``'s. Both decoders detect
the mode from the headers; the SDK gets its v1 event class as the factory (its
documented fast path) and one ``JSONFormat`` instance, and its ``HTTPMessage`` is
built outside the loop, so none of that is counted against it. Timing is
``time.perf_counter`` around a plain loop with the garbage collector off (as
``timeit`` does), best of 3 repeats, ours and the SDK interleaved so a burst of
load on the machine hits both.

No two consecutive calls see the same event: each row cycles through POOL events
(and, for decoding, through their POOL encodings) that differ in ``id`` and ``time``,
so neither side can be flattered by a cache keyed on a value or a body. Both sides get
the same events, and each entry point is called directly (``fn(*args)``, no wrapper),
so the loop costs both sides the same.

A second table puts a *floor* beside each row: the work any correct Python codec must
do for that row, done with nothing else (no checks, no error handling), timed
interleaved with the SDK like the rows above. ``floor / SDK`` bounds the ratio a
codec could reach; the note under it says what share of the 10x budget (SDK time / 10)
the floor alone already takes.

A third table times Dapr's envelope (``events.bus.envelope``, what every broker bus
writes and reads) against its own floor: orjson on the same bytes, or on the same
envelope already built as a dict. It has no SDK counterpart.
"""

from __future__ import annotations

import gc
import itertools
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import orjson
import pybase64
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent

from bench.report import Table, progress, sized
from events.bindings import http
from events.bindings.sdk import to_sdk
from events.bus import envelope
from events.cloudevent import CloudEvent

REPEATS = 3
#: Distinct events per row: more than any bounded cache in the codec holds (1,024), so
#: a cache keyed on a value would hit at most a quarter of the calls.
POOL = 4096
TIME = "2024-05-01T12:30:45.123456Z"
EXTENSIONS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "partitionkey": "room-12",
    "tenant": "acme-corp",
    "priority": 3,
}

Call = tuple[Callable[..., object], Sequence[tuple[object, ...]]]


def json_event() -> CloudEvent:
    """JSON data of about 300 bytes, every optional attribute, four extensions."""
    data = {
        "sensor": "room-12/thermo-3",
        "unit": "celsius",
        "seq": 184467,
        "ok": True,
        "readings": [21.5, 21.52, 21.49, 21.6, 21.58, 21.61, 21.7, 21.66, 21.64, 21.59, 21.55],
        "labels": {"building": "north", "floor": 3, "zone": "b", "owner": "facilities"},
        "note": "periodic reading; calibrated 2024-04-02 by technician 17 (north wing)",
    }
    return CloudEvent(
        id="0b0e4c6a-4bd4-4c67-9d3c-9a3f3b7c2e11",
        source="/sensors/north/room-12",
        type="com.example.sensor.reading",
        datacontenttype="application/json",
        dataschema="https://example.com/schemas/reading.json",
        subject="room-12",
        time=TIME,
        extensions=EXTENSIONS,
        data=data,
    )


def binary_event() -> CloudEvent:
    """1 KiB of random (not valid UTF-8) bytes as application/octet-stream."""
    payload = random.Random(7).randbytes(1024)
    return json_event().evolve(data=payload, datacontenttype="application/octet-stream")


def variants(event: CloudEvent, count: int = POOL) -> list[CloudEvent]:
    """``count`` copies of ``event``, each with its own ``id`` and ``time`` (same lengths)."""
    rng = random.Random(11)
    start = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
    out = []
    for i in range(count):
        when = start + timedelta(seconds=i * 7, microseconds=rng.randrange(1, 1_000_000))
        stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z")
        out.append(event.evolve(id=f"{rng.getrandbits(128):032x}-{i:04d}", time=stamp))
    return out


def _loop(fn: Callable[..., object], pool: Sequence[tuple[object, ...]], n: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        calls = itertools.islice(itertools.cycle(pool), n)
        start = time.perf_counter()
        for args in calls:
            fn(*args)
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def _iterations(call: Call, target: float) -> int:
    """How many calls take about ``target`` seconds."""
    n = 10
    while True:
        elapsed = _loop(*call, n)
        if elapsed >= 0.02 or n >= 10_000_000:
            return max(10, int(n * target / elapsed))
        n *= 4


def _compare(ours: Call, sdk: Call, target: float) -> tuple[float, float]:
    """(ours ops/s, SDK ops/s): best of REPEATS, interleaved."""
    n_ours, n_sdk = _iterations(ours, target), _iterations(sdk, target)
    best_ours = best_sdk = float("inf")
    for _ in range(REPEATS):
        best_ours = min(best_ours, _loop(*ours, n_ours))
        best_sdk = min(best_sdk, _loop(*sdk, n_sdk))
    return n_ours / best_ours, n_sdk / best_sdk


def _check(label: str, ours: CloudEvent, sdk: SdkCloudEvent, original: CloudEvent) -> None:
    """Both decoders must give the event back, or the comparison means nothing."""
    same = (ours.id, ours.time, ours.data, ours.type) == (
        original.id,
        original.time,
        original.data,
        original.type,
    )
    if not same:
        raise AssertionError(f"{label}: our codec did not round-trip the event")
    if sdk.get_id() != original.id or sdk.get_data() != original.data:
        raise AssertionError(f"{label}: the SDK codec did not round-trip the event")


def _cases(event: CloudEvent, fmt: JSONFormat) -> list[tuple[str, Call, Call]]:
    """(row, ours, SDK) for the four entry points, each over POOL distinct events."""
    events = variants(event)
    sdk_events = [to_sdk(e) for e in events]
    binary = [http.to_binary(e) for e in events]
    structured = [http.to_structured(e) for e in events]
    sdk_binary = [sdk_http.to_binary(s, fmt) for s in sdk_events]
    sdk_structured = [sdk_http.to_structured(s, fmt) for s in sdk_events]
    for i in (0, len(events) - 1):
        _check(
            "binary",
            http.from_http(*binary[i])[0],
            sdk_http.from_http(sdk_binary[i], fmt, SdkCloudEvent),
            events[i],
        )
        _check(
            "structured",
            http.from_http(*structured[i])[0],
            sdk_http.from_http(sdk_structured[i], fmt, SdkCloudEvent),
            events[i],
        )
    ours_events = [(e,) for e in events]
    sdk_encode = [(s, fmt) for s in sdk_events]
    return [
        ("encode binary", (http.to_binary, ours_events), (sdk_http.to_binary, sdk_encode)),
        (
            "encode structured",
            (http.to_structured, ours_events),
            (sdk_http.to_structured, sdk_encode),
        ),
        (
            "decode binary",
            (http.from_http, binary),
            (sdk_http.from_http, [(m, fmt, SdkCloudEvent) for m in sdk_binary]),
        ),
        (
            "decode structured",
            (http.from_http, structured),
            (sdk_http.from_http, [(m, fmt, SdkCloudEvent) for m in sdk_structured]),
        ),
    ]


def _floor_encode_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """The headers dict (each present attribute, extensions as strings) and the payload
    (JSON data serialized, bytes as they are): no percent-encoding test, no checks."""
    headers = {
        "ce-id": event.id,
        "ce-source": event.source,
        "ce-specversion": event.specversion,
        "ce-type": event.type,
        "ce-dataschema": event.dataschema,
        "ce-subject": event.subject,
        "ce-time": event.time,
    }
    for name, value in event.extensions.items():
        headers["ce-" + name] = value if type(value) is str else str(value)
    headers["Content-Type"] = event.datacontenttype
    data = event.data
    return headers, data if type(data) is bytes else orjson.dumps(data)


def _floor_encode_structured(attributes: dict[str, object], data: object) -> bytes:
    """Serialize an already built attribute dict with the data (base64 for bytes): what
    remains of structured encoding once gathering the attributes is free."""
    document = dict(attributes)
    if type(data) is bytes:
        document["data_base64"] = pybase64.b64encode_as_string(data)
    else:
        document["data"] = data
    return orjson.dumps(document)


def _floor_decode_binary(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], object]:
    """The ce- attributes picked out of the headers and the payload parsed (JSON) or kept
    (bytes): no header decoding, no validation, no event object."""
    attributes = {name[3:]: value for name, value in headers.items() if name[:3] == "ce-"}
    content_type = headers.get("Content-Type")
    return attributes, body if content_type == "application/octet-stream" else orjson.loads(body)


def _floor_decode_structured(headers: dict[str, str], body: bytes) -> object:
    """orjson.loads of the body alone, plus the base64 decode of ``data_base64`` if any:
    no validation, no event object."""
    document = orjson.loads(body)
    raw = document.get("data_base64")
    if raw is not None:
        document["data"] = pybase64.b64decode(raw, validate=True)
    return document


#: Each row's floor, in _cases' order: (what it is, made from the row's own arguments).
FLOORS = (
    "orjson.dumps of the data (JSON) + one headers dict",
    "orjson.dumps of a ready attribute dict + the data (base64 for bytes)",
    "orjson.loads of the body (JSON) + the ce- attributes dict",
    "orjson.loads of the body alone (+ base64 decode of data_base64)",
)


def _floor_calls(event: CloudEvent) -> list[Call]:
    """The floors of the four rows, over the same POOL events (and encodings) as the rows."""
    events = variants(event)
    binary = [http.to_binary(e) for e in events]
    structured = [http.to_structured(e) for e in events]
    attributes = [({**e.attributes()}, e.data) for e in events]
    return [
        (_floor_encode_binary, [(e,) for e in events]),
        (_floor_encode_structured, attributes),
        (_floor_decode_binary, binary),
        (_floor_decode_structured, structured),
    ]


TOPIC, PUBSUB = "bench-topic", "eventbus"


def _envelope_decode(raw: bytes) -> CloudEvent:
    return envelope.decode(raw, topic=TOPIC, pubsub_name=PUBSUB, fallback_id="bench/0/0")


def _envelope_calls(event: CloudEvent) -> list[tuple[str, Call, Call]]:
    """(row, ours, floor) for the Dapr envelope every broker bus writes and reads: decode
    against orjson.loads of the same bytes, encode against orjson.dumps of the same
    envelope already built as a dict."""
    events = variants(event)
    raws = [(envelope.encode(e, TOPIC, PUBSUB),) for e in events]
    ready = [(orjson.loads(raw),) for (raw,) in raws]
    if _envelope_decode(raws[0][0]) != events[0]:
        raise AssertionError("envelope: our codec did not round-trip the event")
    return [
        ("envelope decode", (_envelope_decode, raws), (orjson.loads, raws)),
        (
            "envelope encode",
            (envelope.encode, [(e, TOPIC, PUBSUB) for e in events]),
            (orjson.dumps, ready),
        ),
    ]


def run(quick: bool = False) -> list[Table]:
    target = sized(0.06 if quick else 0.15, 0.002)  # seconds per timed repeat
    fmt = JSONFormat()
    sdk_version = version("cloudevents")
    table = Table(
        f"codec: ours vs official cloudevents SDK {sdk_version} (HTTP binding, ops/s, "
        f"best of {REPEATS}; {POOL} events differing in id and time, cycled; "
        f"ratio = ours / SDK, higher is better)",
        "ours",
        "SDK",
    )
    floors = Table(
        "codec floors: the unavoidable work of each row alone vs the same SDK call "
        "(ops/s, best of 3, interleaved; ratio = floor / SDK, the most any codec could reach)",
        "floor",
        "SDK",
    )
    envelopes = Table(
        "Dapr envelope (what every broker bus writes and reads) vs its floor: orjson.loads "
        "of the same bytes / orjson.dumps of the same envelope as a ready dict (ops/s, best "
        "of 3, interleaved; ratio = ours / floor, 1.0 is the most possible)",
        "ours",
        "floor",
    )
    for kind, event in (("JSON", json_event()), ("binary", binary_event())):
        body_b = http.to_binary(event)[1]
        body_s = http.to_structured(event)[1]
        label = f"{kind} data {len(body_b)} B"
        sdk_event = to_sdk(event)
        sdk_msg_b = sdk_http.to_binary(sdk_event, fmt)
        sdk_msg_s = sdk_http.to_structured(sdk_event, fmt)
        floor_calls = _floor_calls(event)
        for (name, ours, sdk), what, floor in zip(
            _cases(event, fmt), FLOORS, floor_calls, strict=True
        ):
            progress(f"codec: {label}: {name}")
            ours_ops, sdk_ops = _compare(ours, sdk, target)
            table.add(f"{label}: {name}", "ops/s", ours_ops, sdk_ops)
            floor_ops, floor_sdk_ops = _compare(floor, sdk, target)
            floors.add(f"{label}: {name} (floor: {what})", "ops/s", floor_ops, floor_sdk_ops)
            floors.notes.append(
                f"{label}: {name}: the floor alone takes "
                f"{10 * floor_sdk_ops / floor_ops:.0%} of the 10x budget (SDK time / 10); "
                f"ours takes {10 * sdk_ops / ours_ops:.0%} of it"
            )
        table.notes.append(
            f"{label}: binary body ours {len(body_b)} B / SDK {len(sdk_msg_b.body)} B; "
            f"structured body ours {len(body_s)} B / SDK {len(sdk_msg_s.body)} B"
        )
        for name, ours, floor in _envelope_calls(event):
            progress(f"codec: {label}: {name}")
            ours_ops, floor_ops = _compare(ours, floor, target)
            envelopes.add(f"{label}: {name}", "ops/s", ours_ops, floor_ops)
    return [table, floors, envelopes]
