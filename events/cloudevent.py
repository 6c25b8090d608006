"""The CloudEvents 1.0 value that flows through fnevents.

A ``CloudEvent`` is immutable and validated on construction. The wire codecs are
pure functions over it, one module per binding in :mod:`events.bindings`
(structured JSON, HTTP, Kafka, MQTT, and conversion to the official SDK).

``data`` holds the payload as Python sees it: a parsed JSON value when the
content type is JSON, ``bytes`` for binary payloads, ``str`` for text, or None.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from events.errors import InvalidCloudEvent

SPEC_VERSION = "1.0"
CONTEXT_ATTRIBUTES = (
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
)
RESERVED_NAMES = frozenset((*CONTEXT_ATTRIBUTES, "data", "data_base64"))
_CONTEXT_NAMES = frozenset(CONTEXT_ATTRIBUTES)  # membership tests on the decode hot path
_REQUIRED = ("id", "source", "type", "specversion")
_REQUIRED_NAMES = frozenset(_REQUIRED)
ExtensionValue = str | int | bool | bytes

_EXTENSION_NAME = re.compile(r"[a-z0-9]+")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_EMPTY: Mapping[str, ExtensionValue] = MappingProxyType({})
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # the spec's Integer type is signed 32-bit
type_of = type  # the constructor's parameter named `type` shadows the builtin


@dataclass(frozen=True, slots=True, init=False)
class CloudEvent:
    """One CloudEvent. Construct it directly, or with :meth:`create` for a fresh id and time."""

    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: str | None = None
    extensions: Mapping[str, ExtensionValue] = field(default_factory=lambda: _EMPTY, hash=False)
    data: Any = field(default=None, hash=False)

    def __init__(
        self,
        id: str,
        source: str,
        type: str,
        specversion: str = SPEC_VERSION,
        datacontenttype: str | None = None,
        dataschema: str | None = None,
        subject: str | None = None,
        time: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = _EMPTY,
        data: Any = None,
    ) -> None:
        # Written out instead of dataclass-generated: a frozen dataclass __init__ costs
        # ~5 us per event on this hot path (every decode builds one).
        _require_text("id", id)
        _require_text("source", source)
        _require_text("type", type)
        if specversion != SPEC_VERSION:
            raise InvalidCloudEvent("specversion", f"must be '{SPEC_VERSION}', got {specversion!r}")
        if extensions:
            _check_extensions(extensions)
            # a dict only from_attributes holds needs no defensive copy
            owned = type_of(extensions) is _OwnedExtensions
            extensions = MappingProxyType(extensions if owned else dict(extensions))
        else:
            # an empty dict (or None) from the caller must not stay a mutable back door
            extensions = _EMPTY
        assign = object.__setattr__
        assign(self, "id", id)
        assign(self, "source", source)
        assign(self, "type", type)
        assign(self, "specversion", specversion)
        assign(self, "datacontenttype", datacontenttype)
        assign(self, "dataschema", dataschema)
        assign(self, "subject", subject)
        assign(self, "time", time)
        assign(self, "extensions", extensions)
        assign(self, "data", data)
        if time is not None or datacontenttype is not None or subject is not None or dataschema:
            _check_optional(self)

    @classmethod
    def create(
        cls,
        type: str,
        source: str,
        data: Any = None,
        **attributes: Any,
    ) -> CloudEvent:
        """A new event with a random id and the current time (unless given).

        Keyword arguments that are not context attributes become extensions.
        """
        attributes.setdefault("id", str(uuid.uuid4()))
        attributes.setdefault("time", now_rfc3339())
        if data is not None and "datacontenttype" not in attributes:
            attributes["datacontenttype"] = guess_content_type(data)
        attributes.setdefault("specversion", SPEC_VERSION)
        return from_attributes({"type": type, "source": source, **attributes}, data)

    def get(self, name: str, default: Any = None) -> Any:
        """Any attribute by its CloudEvents name, extensions included."""
        if name in CONTEXT_ATTRIBUTES:
            value = getattr(self, name)
            return default if value is None else value
        return self.extensions.get(name, default)

    def attributes(self) -> dict[str, Any]:
        """Every attribute that is set, context attributes first, then extensions."""
        attrs = {n: v for n in CONTEXT_ATTRIBUTES if (v := getattr(self, n)) is not None}
        attrs.update(self.extensions)
        return attrs

    def evolve(self, data: Any = ..., **changes: Any) -> CloudEvent:
        """A copy with some attributes changed; unknown names change extensions."""
        ext_changes = {k: changes.pop(k) for k in list(changes) if k not in CONTEXT_ATTRIBUTES}
        if ext_changes:
            merged = {**self.extensions, **ext_changes}
            changes["extensions"] = {k: v for k, v in merged.items() if v is not None}
        if data is not ...:
            changes["data"] = data
        return replace(self, **changes)

    @property
    def is_json(self) -> bool:
        """Whether ``data`` is JSON by its content type (absent means JSON, per the spec)."""
        return is_json_content_type(self.datacontenttype)


def from_attributes(attributes: Mapping[str, Any], data: Any = None) -> CloudEvent:
    """Build an event from a flat attribute map (extensions mixed in), as the wire gives it."""
    known: dict[str, Any] = {}
    extensions = _OwnedExtensions()
    for name, value in attributes.items():
        if name in _CONTEXT_NAMES:
            known[name] = value
        elif value is not None:
            extensions[name] = value
    if not _REQUIRED_NAMES.issubset(known):
        missing = next(name for name in _REQUIRED if name not in known)
        raise InvalidCloudEvent(missing, "is required but missing")
    return CloudEvent(**known, extensions=extensions or _EMPTY, data=data)


def is_json_content_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def guess_content_type(data: Any) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        return "application/octet-stream"
    if isinstance(data, str):
        return "text/plain"
    return "application/json"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp as CloudEvents uses it."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise InvalidCloudEvent("time", f"must be an RFC 3339 timestamp, got {value!r}")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidCloudEvent("time", f"is not a real date/time: {value!r} ({exc})") from None


def _require_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidCloudEvent(name, f"must be a non-empty string, got {value!r}")


def _check_optional(event: CloudEvent) -> None:
    if event.time is not None:
        parse_time(event.time)
    if event.datacontenttype is not None:
        _require_text("datacontenttype", event.datacontenttype)
    if event.subject is not None:
        _require_text("subject", event.subject)
    if event.dataschema is not None:
        _require_text("dataschema", event.dataschema)
        if not _URI_SCHEME.match(event.dataschema):
            raise InvalidCloudEvent(
                "dataschema", f"must be an absolute URI, got {event.dataschema!r}"
            )


class _OwnedExtensions(dict):  # type: ignore[type-arg]
    """Extensions built by :func:`from_attributes`, referenced nowhere else."""


#: Extension names already checked; events reuse a handful of names, so the regex runs once.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_LIMIT = 4096


def _check_extensions(extensions: Mapping[str, Any]) -> None:
    for name, value in extensions.items():
        if name not in _GOOD_NAMES:
            _check_extension_name(name)
        _check_extension_value(name, value)


def _check_extension_name(name: Any) -> None:
    if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
        raise InvalidCloudEvent(
            str(name), "extension names must be lower-case letters and digits only"
        )
    if name in RESERVED_NAMES:
        raise InvalidCloudEvent(name, "is a reserved attribute name, not an extension")
    if len(_GOOD_NAMES) < _GOOD_NAMES_LIMIT:
        _GOOD_NAMES.add(name)


def _check_extension_value(name: str, value: Any) -> None:
    if type(value) is str:
        return
    if not isinstance(value, str | int | bool | bytes):
        raise InvalidCloudEvent(
            name,
            f"extension values must be string, integer, boolean or binary, "
            f"got {type(value).__name__}",
        )
    if isinstance(value, int) and not isinstance(value, bool) and not _INT_MIN <= value <= _INT_MAX:
        raise InvalidCloudEvent(name, f"integers must fit in 32 bits (spec), got {value}")
