"""Events shared by the codec tests: one per shape of data, plus tricky attributes."""

from __future__ import annotations

from typing import Any

from events.cloudevent import CloudEvent

TIME = "2024-05-01T12:30:45.123456Z"
# Space, double quote, percent and non-ASCII must be percent-encoded in HTTP headers;
# the printable ASCII punctuation after them must not be.
TRICKY = "a b\"c%d é ☃ 😀 /?#[]@!$&'()*+,;=:~"
NON_UTF8 = b"\xff\x00\x80binary\xfe"


def make(**attributes: Any) -> CloudEvent:
    base: dict[str, Any] = {
        "id": "evt-1",
        "source": "/sensors/7",
        "type": "com.example.reading",
        "time": TIME,
    }
    return CloudEvent(**{**base, **attributes})


# Every codec must give these back unchanged: only string extensions, which binary
# modes can carry without losing their type.
SAMPLES: dict[str, CloudEvent] = {
    "json-object": make(
        datacontenttype="application/json",
        data={"temp": 21.5, "tags": ["a", "b"], "ok": True, "none": None, "ünï": "cödé ☃"},
    ),
    "json-no-content-type": make(data={"k": [1, 2, {"n": None}]}),
    "json-int": make(datacontenttype="application/json", data=42),
    "json-float": make(datacontenttype="application/json", data=-0.25),
    "json-bool": make(datacontenttype="application/json", data=False),
    "json-string": make(datacontenttype="application/json", data="just a string"),
    "json-list": make(datacontenttype="application/json", data=[1, "two", None]),
    "json-suffix": make(datacontenttype="application/vnd.api+json; charset=utf-8", data={"a": 1}),
    "text": make(datacontenttype="text/plain; charset=utf-8", data="héllo wörld ☃ 😀"),
    "text-latin1": make(datacontenttype="text/plain; charset=iso-8859-1", data="café crème"),
    "xml": make(datacontenttype="application/xml", data="<a>b &amp; ü</a>"),
    "binary": make(datacontenttype="application/octet-stream", data=NON_UTF8),
    "no-data": make(),
    "no-data-with-type": make(datacontenttype="application/json"),
    "all-attributes": make(
        datacontenttype="application/json",
        dataschema="https://example.com/schemas/reading.json",
        subject="room/7",
        time="2024-05-01T18:00:45+05:30",
        extensions={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        data={"x": 1},
    ),
    "unicode-attributes": make(
        id='ïd 1 "q" 100%',
        source="/Ünïcode/ソース?x=1&y=2",
        type="com.example.ünï",
        subject=TRICKY,
        extensions={"note": TRICKY, "empty": ""},
        datacontenttype="text/plain",
        data="ünï",
    ),
}
