"""The sync host over real HTTP: plain requests, CloudEvents, replies, outputs to the bus."""

from __future__ import annotations

import aiohttp
import pytest

from events.app.runtime import Runtime
from events.bindings.http import from_http, to_binary, to_structured
from events.cloudevent import CloudEvent
from tests.functions.harness import function, start, write_app
from tests.helpers import receive
from tests.manifests.documents import BUS

CODE = """
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from events.cloudevent import CloudEvent


def describe(event):
    data = event.get_data()
    return {
        "type": event.get_type(),
        "source": event.get_source(),
        "subject": event.get_subject(),
        "id": event.get_id(),
        "datacontenttype": event.get_datacontenttype(),
        "datatype": type(data).__name__,
        "data": data.hex() if isinstance(data, bytes) else data,
    }


def sdk_reply(event):
    attributes = {"type": "reply.sdk", "source": "/replies", "id": "r-" + event.get_id(),
                  "specversion": "1.0", "datacontenttype": "application/json"}
    return SdkEvent(attributes, {"echo": event.get_data()})


def own_reply(event):
    return CloudEvent.create("reply.own", "/replies", "plain text", datacontenttype="text/plain")


async def forward(context, event):
    context.send("out", {"got": event.get_data()})
    return "forwarded"
"""


@pytest.fixture
async def host(tmp_path):
    path = write_app(
        tmp_path,
        CODE,
        BUS,
        function("describe", "describe"),
        function("sdk-reply", "sdk_reply"),
        function("own-reply", "own_reply"),
        function("forward", "forward", "  outputs:\n    out: {topic: forwarded}\n"),
    )
    runtime = await start(path)
    async with aiohttp.ClientSession() as session:
        yield runtime, session
    await runtime.stop()


def url(runtime: Runtime, name: str, path: str = "") -> str:
    return runtime.functions[("default", name)].url + path


async def test_a_plain_json_request_becomes_a_cloudevent(host) -> None:
    runtime, session = host
    async with session.post(url(runtime, "describe", "orders/7"), json={"n": 1}) as response:
        assert response.status == 200
        seen = await response.json()
    assert seen["type"] == "dev.fnevents.http.request"
    assert seen["source"] == "/functions/default/describe"
    assert seen["subject"] == "/orders/7"
    assert seen["datacontenttype"] == "application/json"
    assert seen["data"] == {"n": 1}
    assert seen["id"]


async def test_plain_bodies_are_parsed_by_content_type(host) -> None:
    runtime, session = host
    cases = [
        ({"Content-Type": "text/plain"}, b'{"not": "parsed"}', "str", '{"not": "parsed"}'),
        ({"Content-Type": "application/octet-stream"}, b"\x00\x01", "bytes", "0001"),
        ({}, b'{"detected": true}', "dict", {"detected": True}),
        ({}, "na\u00efve".encode(), "str", "na\u00efve"),
        ({}, b"\xff\xfe", "bytes", "fffe"),
    ]
    for headers, body, datatype, data in cases:
        send = session.put(
            url(runtime, "describe"), data=body, headers=headers, skip_auto_headers=["Content-Type"]
        )
        async with send as response:
            assert response.status == 200, await response.text()
            seen = await response.json()
        assert (seen["datatype"], seen["data"]) == (datatype, data), (headers, body)


async def test_an_empty_body_is_an_event_without_data(host) -> None:
    runtime, session = host
    async with session.post(url(runtime, "describe")) as response:
        seen = await response.json()
    assert seen["data"] is None and seen["datacontenttype"] is None
    async with session.get(url(runtime, "describe")) as response:
        assert (await response.json())["data"] is None


async def test_an_idempotency_key_becomes_the_event_id(host) -> None:
    runtime, session = host
    headers = {"Idempotency-Key": "order-7-try"}
    async with session.post(url(runtime, "describe"), json={}, headers=headers) as response:
        assert (await response.json())["id"] == "order-7-try"


async def test_cloudevents_pass_through_unchanged(host) -> None:
    runtime, session = host
    event = CloudEvent.create("com.example.x", "/x", {"n": 2}, id="e-1", subject="s")
    for encode in (to_binary, to_structured):
        headers, body = encode(event)
        async with session.post(url(runtime, "describe"), data=body, headers=headers) as response:
            seen = await response.json()
        assert seen == {
            "type": "com.example.x",
            "source": "/x",
            "subject": "s",
            "id": "e-1",
            "datacontenttype": "application/json",
            "datatype": "dict",
            "data": {"n": 2},
        }


async def test_an_invalid_cloudevent_or_invalid_json_gets_400_with_the_reason(host) -> None:
    runtime, session = host
    no_id = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s"}
    bad = [
        (no_id, b"", "'id'"),
        ({"Content-Type": "application/cloudevents+json"}, b'{"specversion": "1.0"}', "'id'"),
        ({"Content-Type": "application/json"}, b"{nope", "not valid JSON"),
    ]
    for headers, body, reason in bad:
        async with session.post(url(runtime, "describe"), data=body, headers=headers) as response:
            assert response.status == 400, headers
            assert reason in await response.text()


async def test_plain_bodies_follow_the_charset_rule_every_source_follows(host) -> None:
    """events.bindings.data.decode_payload: text by its declared charset, JSON in another
    charset than UTF-8 re-declared as UTF-8; refused with 400: a charset that is not a
    text encoding, text that does not decode, JSON nested deeper than can be delivered."""
    runtime, session = host
    taken = [
        ("text/plain; charset=utf-16", "héllo ☃".encode("utf-16"), "str", "héllo ☃"),
        ("application/json; charset=utf-16", '{"c": "é"}'.encode("utf-16"), "dict", {"c": "é"}),
    ]
    for content_type, body, datatype, data in taken:
        headers = {"Content-Type": content_type}
        async with session.post(url(runtime, "describe"), data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            seen = await response.json()
        assert (seen["datatype"], seen["data"]) == (datatype, data), content_type
    assert seen["datacontenttype"] == "application/json; charset=utf-8", "data is JSON now"
    refused = [
        ("text/plain; charset=rot13", b"uryyb", "charset 'rot13', which is not a text encoding"),
        ("text/plain; charset=undefined", b"x", "charset 'undefined', which is not a text"),
        ("text/plain", b"caf\xe9", "is not utf-8 text as declared"),
        ("application/json", b"[" * 254 + b"]" * 254, "nested more than 253 levels deep"),
    ]
    for content_type, body, reason in refused:
        headers = {"Content-Type": content_type}
        async with session.post(url(runtime, "describe"), data=body, headers=headers) as response:
            assert response.status == 400, (content_type, await response.text())
            assert reason in await response.text()


@pytest.mark.parametrize(
    ("name", "type_", "data"),
    [("sdk-reply", "reply.sdk", {"echo": {"q": 1}}), ("own-reply", "reply.own", "plain text")],
)
async def test_a_returned_cloudevent_is_the_reply_in_binary_mode(host, name, type_, data) -> None:
    runtime, session = host
    async with session.post(url(runtime, name), json={"q": 1}) as response:
        assert response.status == 200
        assert response.headers["ce-specversion"] == "1.0"
        (reply,) = from_http(response.headers, await response.read())
    assert (reply.type, reply.source, reply.data) == (type_, "/replies", data)


async def test_an_output_of_a_sync_function_is_published_on_the_bus(host) -> None:
    runtime, session = host
    bus = next(iter(runtime.buses.values()))
    outputs = await bus.subscribe("forwarded", "test")
    async with session.post(url(runtime, "forward"), json={"k": "v"}) as response:
        assert (response.status, await response.text()) == (200, "forwarded")
    message = await receive(outputs, 0.5)
    await message.ack()
    assert message.event.data == {"got": {"k": "v"}}
    assert message.event.subject == "out"
