"""HTTP ingest with producers we did not write: curl and the official cloudevents SDK."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import orjson
import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from tests.brokers.servers import free_port, wait_until_listening
from tests.manifests import documents
from tests.sources.harness import Running

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


class Ingest(Running):
    """The HTTP event ``readings`` on a free port, in a Runtime, once it listens."""

    def __init__(self, tmp_path, token: str | None = None, max_pending: int = 10_000) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/readings"
        spec: dict[str, object] = {"host": "127.0.0.1", "port": self.port, "path": "/readings"}
        spec["maxBodyBytes"] = 2048
        if token:
            spec["bearerToken"] = token
        text = documents.bus(maxPending=max_pending) + documents.eventsource(
            "ingest", "http", {"readings": spec}
        )
        super().__init__(tmp_path, text, "ingest", ["readings"], timeout=5)

    async def __aenter__(self) -> Ingest:
        await super().__aenter__()
        await wait_until_listening(self.port)
        return self


async def curl(*args: str) -> tuple[int, dict]:
    """curl, sending JSON unless the arguments set another Content-Type."""
    if not any(a.lower().startswith("content-type:") for a in args):
        args = ("-H", "Content-Type: application/json", *args)
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, _ = await process.communicate()
    body, _, code = out.decode().rpartition("\n")
    return int(code), (orjson.loads(body) if body.strip() else {})


async def test_plain_json_is_wrapped_with_a_stable_id(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest:
        body = '{"vehicle": "v7", "speed": 91.5}'
        status, reply = await curl("-H", "Content-Type: application/json", "-d", body, ingest.url)
        assert status == 200 and reply["accepted"] == 1
        first = await ingest.next()
        await curl("-H", "Content-Type: application/json", "-d", body, ingest.url)
        again = await ingest.next()
    assert first.type == "dev.fnevents.http.request"
    assert first.data == {"vehicle": "v7", "speed": 91.5}
    assert first.datacontenttype == "application/json"
    assert (first.source, first.subject) == ("/readings", "readings")
    assert first.id == again.id == reply["ids"][0], "the same request keeps its id"


async def test_an_idempotency_key_names_the_event(tmp_path) -> None:
    async with Ingest(tmp_path) as ingest:
        await curl("-H", "Idempotency-Key: reading-42", "-d", '{"a": 1}', ingest.url)
        assert (await ingest.next()).id == "http:reading-42"


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_cloudevents_from_the_sdk_pass_through_unchanged(tmp_path, mode) -> None:
    sdk_event = SdkEvent(
        {
            "id": "sdk-1",
            "source": "/vehicles/7",
            "type": "telemetry.reading",
            "specversion": "1.0",
            "subject": "v7",
            "datacontenttype": "application/json",
            "fleet": "north",
        },
        {"speed": 120},
    )
    encode = sdk_http.to_binary_event if mode == "binary" else sdk_http.to_structured_event
    message = encode(sdk_event)
    async with Ingest(tmp_path) as ingest:
        status, _ = await _post(ingest.url, message.headers, message.body)
        assert status == 200
        event = await ingest.next()
    assert (event.id, event.type, event.source, event.subject) == (
        "sdk-1",
        "telemetry.reading",
        "/vehicles/7",
        "v7",
    )
    assert event.extensions["fleet"] == "north"
    assert event.data == {"speed": 120}


async def test_a_batch_becomes_one_event_each(tmp_path) -> None:
    batch = [
        {"specversion": "1.0", "id": f"b{n}", "source": "/s", "type": "t", "data": {"n": n}}
        for n in range(3)
    ]
    async with Ingest(tmp_path) as ingest:
        status, reply = await curl(
            "-H",
            "Content-Type: application/cloudevents-batch+json",
            "-d",
            orjson.dumps(batch).decode(),
            ingest.url,
        )
        got = [await ingest.next() for _ in range(3)]
    assert status == 200 and reply["accepted"] == 3
    assert [e.id for e in got] == ["b0", "b1", "b2"]


async def test_an_invalid_cloudevent_gets_400_and_goes_to_the_dead_letter(tmp_path) -> None:
    bad = '{"specversion": "1.0", "source": "/s", "type": "t"}'
    async with Ingest(tmp_path) as ingest:
        status, reply = await curl(
            "-H", "Content-Type: application/cloudevents+json", "-d", bad, ingest.url
        )
        letter = await ingest.next(ingest.dead)
        metrics = ingest.exposition()
    assert status == 400 and "'id'" in reply["error"]
    assert letter.type == "dev.fnevents.source.rejected"
    assert letter.data == bad.encode(), "the raw bytes are kept"
    assert "is required but missing" in letter.extensions["fnerrorreason"]
    assert 'fnevents_source_rejected_total{source="default/ingest/readings"} 1.0' in metrics


async def test_bad_requests_get_clear_4xx(tmp_path) -> None:
    async with Ingest(tmp_path, token="s3cret") as ingest:
        assert (await curl("-d", "{}", ingest.url))[0] == 401
        auth = ("-H", "Authorization: Bearer s3cret")
        status, reply = await curl(*auth, "-H", "Content-Type: text/plain", "-d", "hi", ingest.url)
        assert status == 415 and "expected a CloudEvent or JSON" in reply["error"]
        status, reply = await curl(*auth, "-d", "{not json", ingest.url)
        assert status == 400 and "not valid JSON" in reply["error"]
        big = '{"x": "' + "a" * 4096 + '"}'
        assert (await curl(*auth, "-d", big, ingest.url))[0] == 413
        assert (await curl(*auth, "-d", '{"ok": true}', ingest.url))[0] == 200


async def test_the_reply_waits_until_the_bus_holds_the_event(tmp_path) -> None:
    async with Ingest(tmp_path, max_pending=1) as ingest:
        assert (await curl("-d", '{"n": 1}', ingest.url))[0] == 200  # fills the group
        second = asyncio.create_task(curl("-d", '{"n": 2}', ingest.url))
        await asyncio.sleep(0.5)
        assert not second.done(), "no 2xx while the bus cannot take the event"
        await ingest.next()  # acking the first makes room
        assert (await asyncio.wait_for(second, 5))[0] == 200
        assert (await ingest.next()).data == {"n": 2}


async def _post(url: str, headers, body: bytes) -> tuple[int, dict]:
    args = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        *args,
        "--data-binary",
        "@-",
        url,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    out, _ = await process.communicate(body)
    text, _, code = out.decode().rpartition("\n")
    return int(code), (orjson.loads(text) if text.strip() else {})
