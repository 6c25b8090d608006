"""HTTP ingest with producers we did not write: curl, the official cloudevents SDK, and
raw bytes over a socket for what no client library would send."""

from __future__ import annotations

import asyncio
import gzip
import logging
import shutil
import subprocess
import zlib
from dataclasses import dataclass

import orjson
import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from events.bindings import http as http_binding
from events.bindings.data import MAX_DATA_DEPTH
from events.bindings.structured import to_json
from events.bus import envelope
from tests.brokers.servers import free_port, wait_until_listening
from tests.manifests import documents
from tests.sources.harness import Running

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
REJECTED = "dev.fnevents.source.rejected"


class Ingest(Running):
    """The HTTP event ``readings`` on a free port, in a Runtime, once it listens."""

    def __init__(
        self,
        tmp_path,
        token: str | None = None,
        max_pending: int = 10_000,
        max_body: int = 2048,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/readings"
        spec: dict[str, object] = {"host": "127.0.0.1", "port": self.port, "path": "/readings"}
        spec["maxBodyBytes"] = max_body
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


# -- what no well-behaved client sends: each answered with a JSON reason, never a 500 ------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as it came off the socket."""

    status: int
    headers: dict[str, str]  #: lower-case names
    body: bytes

    def json(self) -> dict:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        document = orjson.loads(self.body)
        assert isinstance(document, dict), self
        return document

    def reason(self) -> str:
        error = self.json()["error"]
        assert isinstance(error, str) and error, self
        return error


async def exchange(port: int, request: bytes, timeout: float = 5.0) -> Answer:
    """Send ``request`` as it is over a socket; the final answer (1xx skipped), read until
    the server closes the connection (send ``Connection: close``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        await writer.wait_closed()
    return parse_answer(raw)


def parse_answer(raw: bytes) -> Answer:
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        if not 100 <= status < 200:
            break
        raw = rest
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, rest)


def request(
    method: bytes = b"POST",
    path: bytes = b"/readings",
    headers: list[bytes] = (),
    body: bytes = b"",
) -> bytes:
    """An HTTP/1.1 request, headers given as raw lines (``b"Name: value"``)."""
    lines = [b"%s %s HTTP/1.1" % (method, path), b"Host: 127.0.0.1", *headers]
    lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


CE_HEADERS = [b"ce-specversion: 1.0", b"ce-id: r-1", b"ce-source: /s", b"ce-type: t"]


@pytest.mark.parametrize("charset", ["rot13", "base64", "hex", "zlib", "undefined", "nope-8"])
async def test_a_charset_that_is_not_a_text_codec_is_refused_with_a_json_reason(
    tmp_path, charset
) -> None:
    binary = request(
        headers=[*CE_HEADERS, b"Content-Type: text/plain; charset=" + charset.encode()],
        body=b"hello",
    )
    plain = request(
        headers=[b"Content-Type: application/json; charset=" + charset.encode()], body=b"{}"
    )
    async with Ingest(tmp_path) as ingest:
        answers = [await exchange(ingest.port, binary), await exchange(ingest.port, plain)]
        letters = [await ingest.next(ingest.dead) for _ in answers]
    for answer, letter in zip(answers, letters, strict=True):
        assert answer.status in (400, 415), answer
        assert f"charset {charset!r}" in answer.reason()
        assert letter.type == REJECTED
        assert f"charset {charset!r}" in letter.extensions["fnerrorreason"]


async def test_raw_bytes_that_are_not_utf8_in_a_ce_header_get_400(tmp_path) -> None:
    raw = request(headers=[*CE_HEADERS, b"ce-subject: caf\xe9"], body=b"{}")
    encoded = request(headers=[*CE_HEADERS, b"ce-subject: caf%E9"], body=b"{}")
    async with Ingest(tmp_path) as ingest:
        answers = [await exchange(ingest.port, raw), await exchange(ingest.port, encoded)]
        letters = [await ingest.next(ingest.dead) for _ in answers]
    for answer, letter in zip(answers, letters, strict=True):
        assert answer.status == 400, answer
        assert "'subject': is not valid UTF-8" in answer.reason()
        assert "'subject'" in letter.extensions["fnerrorreason"]


async def test_raw_bytes_in_authorization_get_401_and_the_scheme_is_case_insensitive(
    tmp_path,
) -> None:
    async with Ingest(tmp_path, token="s3cret") as ingest:
        raw = await exchange(ingest.port, request(headers=[b"Authorization: Bearer s3\xffcret"]))
        status, reply = await curl("-H", "Authorization: bearer s3cret", "-d", "{}", ingest.url)
        shouting, _ = await curl("-H", "Authorization: BEARER s3cret", "-d", "{}", ingest.url)
        wrong, _ = await curl("-H", "Authorization: Basic s3cret", "-d", "{}", ingest.url)
    assert raw.status == 401, raw
    assert raw.reason() == "missing or wrong bearer token"
    assert raw.headers["www-authenticate"] == "Bearer"
    assert (status, reply["accepted"]) == (200, 1), "RFC 7235: the scheme is case-insensitive"
    assert (shouting, wrong) == (200, 401)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decompress_gets_400(tmp_path, encoding) -> None:
    good = gzip.compress(b'{"n": 1}') if encoding == "gzip" else zlib.compress(b'{"n": 1}')
    corrupt = good[:4] + b"\x00garbage\x00" + good[4:]
    headers = [b"Content-Type: application/json", b"Content-Encoding: " + encoding.encode()]
    async with Ingest(tmp_path) as ingest:
        answer = await exchange(ingest.port, request(headers=headers, body=corrupt))
        fine = await exchange(ingest.port, request(headers=headers, body=good))
        event = await ingest.next()
    assert answer.status == 400, answer
    assert "the body could not be read" in answer.reason()
    assert encoding in answer.reason()
    assert (fine.status, event.data) == (200, {"n": 1}), "a body that decompresses is taken"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH + 1, 255, 1024])
async def test_json_nested_deeper_than_can_be_delivered_is_refused_at_the_door(
    tmp_path, depth
) -> None:
    structured = b'{"specversion":"1.0","id":"deep","source":"/s","type":"t","data":%s}'
    cases = [
        request(headers=[b"Content-Type: application/json"], body=nested(depth)),
        request(headers=[*CE_HEADERS, b"Content-Type: application/json"], body=nested(depth)),
        request(
            headers=[b"Content-Type: application/cloudevents+json"],
            body=structured % nested(min(depth, 1023)),  # orjson reads 1,024 levels in all
        ),
    ]
    async with Ingest(tmp_path, max_body=4096) as ingest:
        answers = [await exchange(ingest.port, case) for case in cases]
        letters = [await ingest.next(ingest.dead) for _ in cases]
    for answer, letter in zip(answers, letters, strict=True):
        assert answer.status == 400, answer
        assert f"nested more than {MAX_DATA_DEPTH} levels deep" in answer.reason()
        assert "nested more than" in letter.extensions["fnerrorreason"]


async def test_json_as_deep_as_can_be_delivered_is_taken_and_delivers(tmp_path) -> None:
    body = nested(MAX_DATA_DEPTH)
    async with Ingest(tmp_path, max_body=4096) as ingest:
        answer = await exchange(
            ingest.port, request(headers=[b"Content-Type: application/json"], body=body)
        )
        event = await ingest.next()
    assert answer.status == 200, answer
    assert orjson.dumps(event.data) == body
    # every way it can leave: binary and structured HTTP mode, Dapr's envelope
    assert http_binding.from_http(*http_binding.to_binary(event)) == [event]
    assert http_binding.from_http(*http_binding.to_structured(event)) == [event]
    assert orjson.loads(envelope.encode(event, "t", "p"))["data"] == event.data
    assert to_json(event)


async def test_every_answer_of_the_ingest_port_is_json(tmp_path) -> None:
    framing = [
        b"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /readings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ]
    async with Ingest(tmp_path) as ingest:
        missing = await exchange(ingest.port, request(path=b"/elsewhere", body=b"{}"))
        method = await exchange(ingest.port, request(method=b"GET"))
        bad = [await exchange(ingest.port, raw) for raw in framing]
    assert missing.status == 404 and "POST events to /readings" in missing.reason()
    assert method.status == 405 and "'GET'" in method.reason()
    assert method.headers["allow"] == "POST"
    for answer in bad:
        assert answer.status == 400, answer
        assert "the request could not be read" in answer.reason()


STRUCTURED = b'{"specversion":"1.0","id":"%s","source":"/s","type":"t",%s}'


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        (b'"data_base64":"\xc3\xa9"', "'data_base64': is not valid base64"),
        (b'"datacontenttype":"text/plain\\n","data":"x"', "control characters"),
        (b'"datacontenttype":"application/cloudevents+json","data":{}', "a CloudEvents format"),
        (b'"datacontenttype":"text/plain","data_base64":"/w=="', "is not utf-8 text"),
        (b'"datacontenttype":"text/plain; charset=us-ascii","data":"\xc3\xa9"', "written as"),
        (b'"datacontenttype":"text/plain; charset=rot13","data":"x"', "charset 'rot13'"),
    ],
)
async def test_an_event_that_could_not_be_delivered_as_it_says_is_refused(
    tmp_path, members, reason
) -> None:
    """Found by tests/fuzz: each was taken (or crashed the handler) and then could not be
    sent on in binary mode, or not read back by the subscriber as it declared itself."""
    body = STRUCTURED % (b"bad", members)
    async with Ingest(tmp_path) as ingest:
        answer = await exchange(
            ingest.port,
            request(headers=[b"Content-Type: application/cloudevents+json"], body=body),
        )
        letter = await ingest.next(ingest.dead)
    assert answer.status == 400, answer
    assert reason in answer.reason()
    assert letter.data == body


async def test_bytes_without_a_content_type_are_declared_octet_stream(tmp_path) -> None:
    """What the official SDK writes for bytes data: data_base64 and no datacontenttype.
    Absent means JSON, so binary mode would send bytes no subscriber could read as it."""
    body = STRUCTURED % (b"b", b'"data_base64":"AAEC"')
    async with Ingest(tmp_path) as ingest:
        answer = await exchange(
            ingest.port,
            request(headers=[b"Content-Type: application/cloudevents+json"], body=body),
        )
        event = await ingest.next()
    assert answer.status == 200, answer
    assert (event.datacontenttype, event.data) == ("application/octet-stream", b"\x00\x01\x02")
    assert http_binding.from_http(*http_binding.to_binary(event)) == [event]


async def test_a_body_that_does_not_decompress_logs_no_traceback(tmp_path, caplog) -> None:
    """aiohttp reads what is left of a body after a refusal, to throw it away; a body
    that does not decompress was logged as an unhandled exception, with a traceback."""
    corrupt = gzip.compress(b'{"n": 1}')[:10] + b"garbage" * 10
    headers = [b"Content-Encoding: gzip", b"Content-Type: application/json"]
    authorized = [*headers, b"Authorization: Bearer s3cret"]
    async with Ingest(tmp_path, token="s3cret") as ingest:
        refused = await exchange(ingest.port, request(headers=headers, body=corrupt))
        unreadable = await exchange(ingest.port, request(headers=authorized, body=corrupt))
        await asyncio.sleep(0.2)  # aiohttp reads what is left after the answer
    assert (refused.status, unreadable.status) == (401, 400)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
