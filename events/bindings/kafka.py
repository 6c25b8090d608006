"""The CloudEvents Kafka binding: binary and structured modes.

Pure functions over a :class:`KafkaRecord`; no Kafka client is imported.

Binary mode: every attribute but ``datacontenttype`` is a ``ce_<name>`` header
holding its canonical string as UTF-8 (no percent-encoding: Kafka headers are
bytes); the ``content-type`` header is ``datacontenttype``; the value is the data
(see :mod:`events.bindings.data`), and an event without data has no value at
all, which a compacted topic treats as a tombstone (binding 3.2.2).

Structured mode: the JSON event format as the value, with ``content-type:
application/cloudevents+json; charset=UTF-8``.

Key: by default the ``partitionkey`` extension (the spec's opt-in key mapper,
chosen as our default), else no key; pass ``key_mapper`` to choose another. The
event itself is never changed by key mapping, so ``partitionkey`` also stays a
header (binding 3.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from events.bindings import data as _data
from events.bindings.structured import from_json, to_json
from events.cloudevent import CloudEvent
from events.errors import InvalidCloudEvent

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
_PREFIX = "ce_"

KeyMapper = Callable[[CloudEvent], bytes | str | None]


class KafkaRecord(NamedTuple):
    """The parts of a Kafka record a codec fills in; unpack it into a producer call."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def partitionkey_mapper(event: CloudEvent) -> bytes | None:
    """The default key mapper: the ``partitionkey`` extension as-is, if present."""
    value = event.extensions.get("partitionkey")
    if value is None:
        return None
    return _data.utf8("partitionkey", _data.canonical_string(value))


def to_binary(event: CloudEvent, key_mapper: KeyMapper | None = None) -> KafkaRecord:
    """Binary mode: ``ce_*`` headers, ``content-type`` and the data as the value."""
    headers = [
        (_PREFIX + name, _data.utf8(name, value)) for name, value in _data.header_attributes(event)
    ]
    if event.datacontenttype is not None:
        headers.append(("content-type", _data.utf8("datacontenttype", event.datacontenttype)))
    return KafkaRecord(_key(event, key_mapper), _data.encode_data(event), headers)


def to_structured(event: CloudEvent, key_mapper: KeyMapper | None = None) -> KafkaRecord:
    """Structured mode: the JSON event format as the value."""
    headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode("ascii"))]
    return KafkaRecord(_key(event, key_mapper), to_json(event), headers)


def from_record(
    key: bytes | str | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
) -> CloudEvent:
    """The event in a Kafka record, whichever mode it uses.

    A ``content-type`` starting with ``application/cloudevents`` means structured
    mode; a ``ce_specversion`` header means binary mode; with neither, the value
    is tried as a structured event (producers such as Dapr's ``pubsub.kafka``
    write the envelope without headers). The key is accepted so a record unpacks
    straight in (``from_record(*record)``) but is not copied into the event: it is
    transport metadata, and inventing a ``partitionkey`` would change the event.
    """
    del key  # see the docstring: deliberately not part of the event
    found = {name.lower(): raw for name, raw in headers if raw is not None}
    content_type = found.get("content-type")
    media_text = None if content_type is None else _data.from_utf8("datacontenttype", content_type)
    media = _data.media_type(media_text)
    if media.startswith(_data.STRUCTURED_PREFIX):
        _data.require_json_format(media, _data.JSON_FORMAT)
        return from_json(value if value is not None else b"")
    if _PREFIX + "specversion" in found:
        return _from_binary(found, media_text, value)
    try:
        return from_json(value if value is not None else b"")
    except InvalidCloudEvent as exc:
        raise _data.not_a_cloudevent("ce_specversion header", exc) from None


def _from_binary(
    found: dict[str, bytes], content_type: str | None, value: bytes | None
) -> CloudEvent:
    attributes = {
        name[len(_PREFIX) :]: _data.from_utf8(name[len(_PREFIX) :], raw)
        for name, raw in found.items()
        if name.startswith(_PREFIX)
    }
    if content_type is not None:
        attributes["datacontenttype"] = content_type  # the header wins over ce_datacontenttype
    return _data.from_binary(attributes, value)


def _key(event: CloudEvent, key_mapper: KeyMapper | None) -> bytes | None:
    key = (key_mapper or partitionkey_mapper)(event)
    return key.encode("utf-8") if isinstance(key, str) else key
