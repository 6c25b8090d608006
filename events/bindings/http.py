"""The CloudEvents HTTP binding: binary, structured and batch modes.

Pure functions over (headers, body); no HTTP library is imported. Callers pass
whatever header mapping their framework has; lookups are case-insensitive.

Binary mode: every attribute but ``datacontenttype`` is a ``ce-<name>`` header
holding the canonical string, percent-encoded per section 3.1.3.2 of the binding
(space, ``"``, ``%`` and anything outside printable ASCII U+0021-U+007E, as
upper-case ``%XY`` of the UTF-8 bytes); ``Content-Type`` is ``datacontenttype``;
the body is the data (see :mod:`events.bindings.data`). Typed extensions
therefore read back as strings.

Mode detection on receipt (section 3): a ``Content-Type`` starting with
``application/cloudevents-batch`` is a batch, one starting with
``application/cloudevents`` is structured, anything else is binary mode, which
needs a ``ce-specversion`` header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from events.bindings import data as _data
from events.bindings.structured import from_json, from_json_batch, to_json, to_json_batch
from events.cloudevent import CloudEvent, is_json_content_type
from events.errors import InvalidCloudEvent
from events.errors import quote as shown

STRUCTURED_CONTENT_TYPE = _data.JSON_FORMAT
BATCH_CONTENT_TYPE = _data.JSON_BATCH_FORMAT
_PREFIX = "ce-"
# Printable ASCII except space (already outside the range), '"' and '%' (section 3.1.3.2).
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_SAFE_BYTES = _SAFE.encode("ascii")
_QUOTED_PAIR = re.compile(r"\\(.)")
_JSON_CONTAINERS = (dict, list)  # `type(x) in` a tuple is one C-level scan

Headers = dict[str, str]


def to_binary(event: CloudEvent) -> tuple[Headers, bytes]:
    """Binary mode: ``ce-*`` headers, ``Content-Type`` and the data as the body."""
    # The hot path of every POST, written out: the headers in CONTEXT_ATTRIBUTES' order
    # (the required attributes are never None: CloudEvent checks), then the extensions;
    # then one test over all the values at once says whether any needs percent-encoding
    # (almost never), and only then is each value encoded on its own.
    headers = {
        "ce-id": event.id,
        "ce-source": event.source,
        "ce-specversion": event.specversion,
        "ce-type": event.type,
    }
    if (value := event.dataschema) is not None:
        headers["ce-dataschema"] = value
    if (value := event.subject) is not None:
        headers["ce-subject"] = value
    if (value := event.time) is not None:
        headers["ce-time"] = value
    extensions = event.extensions
    if extensions:
        for name, value in extensions.items():
            if type(value) is str:
                headers[_PREFIX + name] = value
            else:  # an exact int's canonical string is str(value), without the call
                headers[_PREFIX + name] = str(value) if type(value) is int else _canonical(value)
    text = "".join(headers.values())
    if not text.isascii() or text.encode("ascii").translate(None, _SAFE_BYTES):  # _safe, inline
        headers = {
            header: encode_header_value(header[len(_PREFIX) :], value)
            for header, value in headers.items()
        }
    if (content_type := event.datacontenttype) is not None:
        headers["Content-Type"] = content_type
    data = event.data
    if type(data) is bytes:  # encode_data's answer for bytes, without the call
        return headers, data
    if type(data) in _JSON_CONTAINERS and (
        content_type is None or is_json_content_type(content_type)
    ):
        return headers, _data.dumps_data(data)  # encode_data's answer for JSON, one call less
    return headers, _data.encode_data(event) or b""


def to_structured(event: CloudEvent) -> tuple[Headers, bytes]:
    """Structured mode: the whole event as ``application/cloudevents+json``."""
    return {"Content-Type": STRUCTURED_CONTENT_TYPE}, to_json(event)


def to_batch(events: Iterable[CloudEvent]) -> tuple[Headers, bytes]:
    """Batch mode: a JSON array of events as ``application/cloudevents-batch+json``."""
    return {"Content-Type": BATCH_CONTENT_TYPE}, to_json_batch(events)


def from_http(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """The events in an HTTP message, whichever mode it uses (one unless a batch)."""
    content_type, attributes = _read_headers(headers)
    mode = _MODES.get(content_type) if type(content_type) is str else None
    if mode is None:
        mode = _mode(content_type)
    if mode is _BINARY:
        return [_from_binary(attributes, content_type, body)]
    if mode is _STRUCTURED:
        return [from_json(body)]
    return from_json_batch(body)


_BINARY, _STRUCTURED, _BATCH = "binary", "structured", "batch"
#: Content-Type -> the mode it selects, for the types that select one (a CloudEvents
#: format other than JSON is refused each time). A stream uses a few content types.
_MODES: dict[str, str] = {}


def _mode(content_type: str | None) -> str:
    """The mode a Content-Type selects (section 3), or the error for a format other than
    JSON; remembered for an exact str, bounded like _MEDIA."""
    media = _media(content_type)
    if media.startswith(_data.BATCH_PREFIX):
        _data.require_json_format(media, BATCH_CONTENT_TYPE)
        mode = _BATCH
    elif media.startswith(_data.STRUCTURED_PREFIX):
        _data.require_json_format(media, STRUCTURED_CONTENT_TYPE)
        mode = _STRUCTURED
    else:
        mode = _BINARY
    if type(content_type) is str:
        _remember(_MODES, content_type, mode, _MEDIA_LIMIT, _MEDIA_LONGEST)
    return mode


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether a request claims to carry CloudEvents (any mode).

    True for a CloudEvents ``Content-Type`` or a ``ce-specversion`` header; a plain
    JSON POST gives False so callers can wrap it in an event of their own.
    """
    lower = _lower(headers)
    media = _data.media_type(lower.get("content-type"))
    return media.startswith(_data.STRUCTURED_PREFIX) or _PREFIX + "specversion" in lower


_canonical = _data.canonical_string


def _safe(text: str) -> bool:
    """Whether ``text`` is all in the spec's safe range (printable ASCII but space, ``"``
    and ``%``), where percent-encoding changes nothing. Every test is per character, so
    it holds for a concatenation exactly when it holds for each part. Deleting the safe
    bytes in one C pass is twice as fast as ``isprintable()`` and three ``in`` scans."""
    return text.isascii() and not text.encode("ascii").translate(None, _SAFE_BYTES)


def encode_header_value(attribute: str, value: str) -> str:
    """Percent-encode one attribute value for a ``ce-`` header (section 3.1.3.2)."""
    if _safe(value):
        return value  # already in the spec's safe range: quote() would return it unchanged
    return quote(_data.utf8(attribute, value), safe=_SAFE)


def decode_header_value(attribute: str, value: str) -> str:
    """Undo :func:`encode_header_value`; also accepts RFC 7230 quoted strings.

    Older senders quoted values instead of percent-encoding them, and the spec
    says receivers must still accept that. Invalid UTF-8 is rejected, whether
    percent-encoded or sent raw (servers such as aiohttp hand raw bytes that are not
    UTF-8 over as lone surrogates, which stand for those bytes).
    """
    value = value.strip()
    if "%" not in value and '"' not in value and value.isascii():
        return value  # nothing encoded: unquoting would return it unchanged
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
    raw = value.encode("utf-8", "surrogatepass")  # a surrogate fails the UTF-8 test below
    return _data.from_utf8(attribute, unquote_to_bytes(raw))


def _from_binary(attributes: dict[str, str], content_type: str | None, body: bytes) -> CloudEvent:
    """``attributes``: the ``ce-`` headers' raw values by attribute name."""
    if "specversion" not in attributes:
        raise InvalidCloudEvent(
            "specversion",
            f"not a CloudEvent: no ce-specversion header and Content-Type "
            f"{shown(content_type)} is not a CloudEvents format",
        )
    if "datacontenttype" in attributes:
        # section 3.1.1: the content type travels only as Content-Type
        raise InvalidCloudEvent(
            "datacontenttype", "must be sent as Content-Type, not as a ce-datacontenttype header"
        )
    # decode_header_value returns every value as it is when all are in the safe range:
    # nothing to strip (whitespace is space or not printable), unquote or decode; one
    # test over all the values at once (_safe, inline)
    try:
        text = "".join(attributes.values())
        unchanged = text.isascii() and not text.encode("ascii").translate(None, _SAFE_BYTES)
    except TypeError:  # not all str: the general path says what is wrong
        unchanged = False
    if not unchanged:
        attributes = {name: decode_header_value(name, value) for name, value in attributes.items()}
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    return _data.from_binary(attributes, body, owned=True)


#: Header name as sent -> the attribute it carries (``ce-id`` -> ``id``), _CONTENT_TYPE,
#: or None for any other header. A peer sends the same few names again and again; this
#: saves lower-casing each. Bounded in count and length, since the wire chooses them.
_HEADER_KINDS: dict[str, Any] = {}
_HEADER_KINDS_LIMIT = 1024
_HEADER_KINDS_LONGEST = 100
_CONTENT_TYPE: Any = object()
_UNKNOWN: Any = object()


def _read_headers(headers: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """(Content-Type, the ``ce-`` headers' raw values by attribute name), read as from
    the headers with lower-cased names: for a name given twice (in any case), the last
    value at the first one's place.

    When every name is in the cache (a peer's usual headers), one dict comprehension
    reads them all: the names of other headers all map to None and Content-Type to
    _CONTENT_TYPE, and both keys are taken out after. A name is looked up by its string
    value, so a str subclass (aiohttp's ``istr``) hits the entry of the same text."""
    kinds = _HEADER_KINDS
    try:
        read = {kinds[name]: value for name, value in headers.items()}
    except (KeyError, TypeError):  # a name seen for the first time (or not a str)
        return _read_each_header(headers)
    content_type = read.pop(_CONTENT_TYPE, None)
    read.pop(None, None)
    return content_type, read


def _read_each_header(headers: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """:func:`_read_headers` one name at a time, learning the names it has not seen."""
    content_type = None
    attributes: dict[str, str] = {}
    kinds = _HEADER_KINDS
    for name, value in headers.items():
        kind = kinds.get(name, _UNKNOWN) if type(name) is str else _UNKNOWN
        if kind is _UNKNOWN:
            kind = _header_kind(name)
        if kind is None:
            continue
        if kind is _CONTENT_TYPE:
            content_type = value
        else:
            attributes[kind] = value
    return content_type, attributes


def _header_kind(name: str) -> Any:
    lower = name.lower()
    kind = _CONTENT_TYPE if lower == "content-type" else None
    if lower.startswith(_PREFIX):
        kind = lower[len(_PREFIX) :]
    if type(name) is str:
        _remember(_HEADER_KINDS, name, kind, _HEADER_KINDS_LIMIT, _HEADER_KINDS_LONGEST)
    return kind


#: Content-Type -> its media type (lower case, no parameters): a stream uses a few.
_MEDIA: dict[str, str] = {}
_MEDIA_LIMIT = 1024
_MEDIA_LONGEST = 200


def _media(content_type: str | None) -> str:
    if type(content_type) is not str:
        return _data.media_type(content_type)
    media = _MEDIA.get(content_type)
    if media is None:
        media = _data.media_type(content_type)
        _remember(_MEDIA, content_type, media, _MEDIA_LIMIT, _MEDIA_LONGEST)
    return media


def _remember(cache: dict[str, Any], key: str, value: Any, limit: int, longest: int) -> None:
    """Keep ``value`` under ``key`` unless the cache is full or the key too long: the wire
    chooses the keys, so neither may grow without bound."""
    if len(cache) < limit and len(key) <= longest:
        cache[key] = value


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
