"""Functions written for Google's and OpenFunction's Python frameworks, hosted over real
HTTP and from a real bus topic."""

from __future__ import annotations

import asyncio
import io
import uuid

import aiohttp
import pytest

from events.bindings.http import to_binary, to_structured
from events.cloudevent import CloudEvent
from tests.functions.harness import function, start, write_app
from tests.helpers import until
from tests.manifests.documents import BUS

CODE = """
import os
import flask
import functions_framework
from functions_framework.context.user_context import UserContext

SEEN = []
AT_IMPORT = os.environ.get("GREETING")

def text(request):
    return f"hello {request.args.get('name', 'world')} via {request.method} {request.path}"

def as_bytes(request):
    return b"\\x00raw"

def as_dict(request):
    return {"json": request.get_json(silent=True), "greeting": AT_IMPORT}

def with_status(request):
    return "created", 201

def with_headers(request):
    return "teapot", 418, {"X-Kind": "tea"}

def response_object(request):
    return flask.Response("made", status=202, mimetype="text/csv")

def crashes(request):
    raise RuntimeError("boom")

@functions_framework.http
def decorated_http(request):
    return "decorated " + request.method

@functions_framework.cloud_event
def decorated_event(cloud_event):
    SEEN.append((cloud_event["type"], cloud_event["source"], cloud_event.data))

def plain_event(cloud_event):
    SEEN.append((cloud_event["type"], cloud_event["source"], cloud_event.data))

def ofn_http(context: UserContext):
    request = context.get_http_request()
    context.send("out", {"body": request.get_json()})
    return {"sent": True}, 200

def ofn_topic(context):
    event = context.get_topic_event()
    SEEN.append(("ofn", event.EventType(), event.data, context.get_binding_request().text()))
    context.send("out", "from topic")
"""

GOOGLE_HTTP = [
    ("text", "  framework: google-http\n"),
    ("as_bytes", "  framework: google-http\n"),
    ("as_dict", "  framework: google-http\n  env: {GREETING: hi}\n"),
    ("with_status", "  framework: google-http\n"),
    ("with_headers", "  framework: google-http\n"),
    ("response_object", "  framework: google-http\n"),
    ("crashes", "  framework: google-http\n"),
    ("decorated_http", ""),  # the decorator decides, the manifest says nothing
    ("decorated_event", "  framework: google-http\n"),  # the decorator wins
    ("plain_event", "  framework: google-cloudevent\n"),
]


@pytest.fixture
async def runtime(tmp_path):
    docs = [function(name.replace("_", "-"), name, extra) for name, extra in GOOGLE_HTTP]
    path = write_app(tmp_path, CODE, *docs)
    runtime = await start(path)
    yield runtime
    await runtime.stop()


def url(runtime, name: str) -> str:
    return runtime.functions[("default", name)].url


async def test_google_http_return_shapes(runtime) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(url(runtime, "text") + "a/b?name=ann") as r:
            assert (r.status, await r.text()) == (200, "hello ann via GET /a/b")
            assert r.headers["Content-Type"].startswith("text/html")
        async with http.post(url(runtime, "as-bytes")) as r:
            assert (r.status, await r.read()) == (200, b"\x00raw")
        async with http.post(url(runtime, "as-dict"), json={"a": 1}) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/json"
            assert await r.json() == {"json": {"a": 1}, "greeting": "hi"}
        async with http.put(url(runtime, "with-status")) as r:
            assert (r.status, await r.text()) == (201, "created")
        async with http.get(url(runtime, "with-headers")) as r:
            assert (r.status, r.headers["X-Kind"], await r.text()) == (418, "tea", "teapot")
        async with http.get(url(runtime, "response-object")) as r:
            assert (r.status, r.headers["Content-Type"]) == (202, "text/csv; charset=utf-8")
        async with http.get(url(runtime, "crashes")) as r:
            assert r.status == 500 and r.headers["X-Google-Status"] == "crash"
        async with http.get(url(runtime, "text") + "robots.txt") as r:
            assert r.status == 404
        async with http.delete(url(runtime, "decorated-http")) as r:
            assert (r.status, await r.text()) == (200, "decorated DELETE")


async def test_google_cloudevent_binary_and_structured(runtime) -> None:
    module = __import__("fnevents_function_plain_event")
    for name in ("plain-event", "decorated-event"):
        for encode in (to_binary, to_structured):
            event = CloudEvent.create("com.example.t", f"/{encode.__name__}", {"k": name})
            headers, body = encode(event)
            async with (
                aiohttp.ClientSession() as http,
                http.post(url(runtime, name), headers=dict(headers), data=body) as r,
            ):
                assert (r.status, await r.text()) == (200, "OK")
    seen = module.SEEN + __import__("fnevents_function_decorated_event").SEEN
    assert ("com.example.t", "/to_binary", {"k": "plain-event"}) in seen
    assert ("com.example.t", "/to_structured", {"k": "decorated-event"}) in seen


async def test_cloudevent_and_ofn_from_a_topic_and_ofn_over_http(tmp_path) -> None:
    topic, out = f"in-{uuid.uuid4().hex[:6]}", f"out-{uuid.uuid4().hex[:6]}"
    outputs = f"  outputs:\n    out: {{topic: {out}}}\n"
    path = write_app(
        tmp_path,
        CODE,
        BUS,
        function(
            "ce", "plain_event", f"  framework: google-cloudevent\n  input: {{topic: {topic}}}\n"
        ),
        function(
            "ofn-topic", "ofn_topic", f"  framework: ofn\n  input: {{topic: {topic}}}\n" + outputs
        ),
        function("ofn-http", "ofn_http", "  framework: ofn\n" + outputs),
    )
    output = io.StringIO()
    runtime = await start(path, output=output)
    try:
        bus = next(iter(runtime.buses.values()))
        received: list[CloudEvent] = []
        subscription = await bus.subscribe(out, "test")

        async def collect() -> None:
            async for message in subscription:
                received.append(message.event)
                await message.ack()

        task = asyncio.create_task(collect())
        await bus.publish(topic, CloudEvent.create("com.example.async", "/t", {"n": 7}))
        ce = __import__("fnevents_function_ce")
        ofn = __import__("fnevents_function_ofn_topic")
        await until(lambda: ce.SEEN and ofn.SEEN, f"both ran: {output.getvalue()}", 10.0, 0.05)
        assert ce.SEEN[-1] == ("com.example.async", "/t", {"n": 7})
        assert ofn.SEEN[-1] == ("ofn", "com.example.async", b'{"n":7}', '{"n":7}')
        async with (
            aiohttp.ClientSession() as http,
            http.post(url(runtime, "ofn-http"), json={"x": 1}) as r,
        ):
            assert (r.status, await r.json()) == (200, {"sent": True})
        await until(lambda: len(received) >= 2, "both outputs on the bus", 10.0, 0.05)
        assert sorted(map(repr, (e.data for e in received))) == sorted(
            map(repr, ["from topic", {"body": {"x": 1}}])
        )
        task.cancel()
    finally:
        await runtime.stop()
