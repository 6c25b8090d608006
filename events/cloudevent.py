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

from events.errors import InvalidCloudEvent, quote, shorten

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
ExtensionValue = str | int | bool | bytes

_EXTENSION_NAME = re.compile(r"[a-z0-9]+")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
#: The form nearly every producer writes; a subset of _RFC3339 that needs no rewriting.
_RFC3339_COMMON = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_fromisoformat = datetime.fromisoformat
_MISSING: Any = object()
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_USUAL_SCHEMES = ("https:", "http:")  # each is a match of _URI_SCHEME
_NOT_HEADER_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
_EMPTY: Mapping[str, ExtensionValue] = MappingProxyType({})
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # the spec's Integer type is signed 32-bit
_EXTENSION_TYPES = (str, int, bool, bytes)  # a tuple: a union is built on every isinstance
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
        # ~5 us per event on this hot path. Decoders skip even this frame: see from_attributes.
        _build(
            self,
            id,
            source,
            type,
            specversion,
            datacontenttype,
            dataschema,
            subject,
            time,
            extensions,
            data,
        )

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


def from_attributes(
    attributes: Mapping[str, Any], data: Any = None, *, owned: bool = False
) -> CloudEvent:
    """Build an event from a flat attribute map (extensions mixed in), as the wire gives it.

    ``owned=True`` says ``attributes`` is a dict the caller made and will not use again:
    it is consumed (emptied of the context attributes) instead of copied.

    The checks are :func:`_build`'s, in its order; this is the decoders' hot path, so the
    map is taken apart once (what the context attributes leave are the extensions) and
    the event is filled as an :class:`_Unfrozen` (see there)."""
    rest = attributes if owned and type_of(attributes) is dict else dict(attributes)
    pop = rest.pop
    id = pop("id", _MISSING)
    source = pop("source", _MISSING)
    type = pop("type", _MISSING)
    specversion = pop("specversion", _MISSING)
    datacontenttype = pop("datacontenttype", None)
    dataschema = pop("dataschema", None)
    subject = pop("subject", None)
    time = pop("time", None)
    if id is _MISSING or source is _MISSING or type is _MISSING or specversion is _MISSING:
        required = zip(_REQUIRED, (id, source, type, specversion), strict=True)
        missing = next(name for name, value in required if value is _MISSING)
        raise InvalidCloudEvent(missing, "is required but missing")
    if type_of(id) is not str or not id:
        _require_text("id", id)
    if type_of(source) is not str or not source:
        _require_text("source", source)
    if type_of(type) is not str or not type:
        _require_text("type", type)
    if specversion != SPEC_VERSION:
        raise InvalidCloudEvent(
            "specversion", f"must be '{SPEC_VERSION}', got {quote(specversion)}"
        )
    extensions = _extensions_from(rest) if rest else _EMPTY
    event = _Unfrozen()
    event.id = id
    event.source = source
    event.type = type
    event.specversion = specversion
    event.datacontenttype = datacontenttype
    event.dataschema = dataschema
    event.subject = subject
    event.time = time
    event.extensions = extensions
    event.data = data
    event.__class__ = CloudEvent
    if (
        time is not None
        or datacontenttype is not None
        or subject is not None
        or dataschema is not None
    ):
        _check_optional(time, datacontenttype, subject, dataschema)
    return event


def _extensions_from(rest: dict[str, Any]) -> Mapping[str, ExtensionValue]:
    """The extensions among what is left of an attribute map once the context attributes
    are taken out: every name with a value, in the map's order, checked as
    :func:`_check_extensions` does; a read-only view of a compact copy."""
    complete = True
    for name, value in rest.items():
        if value is None:  # an attribute without a value is absent
            complete = False
            continue
        if name not in _GOOD_NAMES:
            _check_extension_name(name)
        if type_of(value) is not str and (
            type_of(value) is not int or not _INT_MIN <= value <= _INT_MAX
        ):
            _check_extension_value(name, value)
    if complete:
        return MappingProxyType(dict(rest))
    present = {name: value for name, value in rest.items() if value is not None}
    return MappingProxyType(present) if present else _EMPTY


#: Content type -> is JSON: a stream uses a handful of content types, each parsed once.
#: Bounded in count and length, since the wire chooses them.
_JSON_MEDIA: dict[str, bool] = {}
_JSON_MEDIA_LIMIT = 1024
_JSON_MEDIA_LONGEST = 200


def is_json_content_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    known = _JSON_MEDIA.get(content_type) if type_of(content_type) is str else None
    if known is not None:
        return known
    media = content_type.split(";", 1)[0].strip().lower()
    is_json = media in ("application/json", "text/json") or media.endswith("+json")
    if (
        type_of(content_type) is str
        and len(_JSON_MEDIA) < _JSON_MEDIA_LIMIT
        and len(content_type) <= _JSON_MEDIA_LONGEST
    ):
        _JSON_MEDIA[content_type] = is_json
    return is_json


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
    if type_of(value) is str and _RFC3339_COMMON.fullmatch(value):
        # the usual form (ASCII digits, upper-case T and Z): the same instant as the general
        # path gives, since Python 3.11 reads a trailing Z as +00:00
        try:
            return _fromisoformat(value)
        except ValueError:
            pass  # the general path raises the error, worded as always
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise InvalidCloudEvent("time", f"must be an RFC 3339 timestamp, got {quote(value)}")
    try:
        return _fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidCloudEvent(
            "time", f"is not a real date/time: {quote(value)} ({shorten(str(exc))})"
        ) from None


def _require_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidCloudEvent(name, f"must be a non-empty string, got {quote(value)}")


def _build(
    event: CloudEvent,
    id: Any,
    source: Any,
    type: Any,
    specversion: Any,
    datacontenttype: Any,
    dataschema: Any,
    subject: Any,
    time: Any,
    extensions: Mapping[str, Any] | None,
    data: Any,
) -> None:
    """Validate and set every field of ``event``, for the constructor: the rules and the
    order errors are reported in. :func:`from_attributes` applies the same checks inline
    (tests/fastpaths/test_codec_construct.py holds the two to the same results).

    Plain ``str`` values take an inline test; anything else goes through the full check,
    so str subclasses and the error messages are as they always were."""
    if type_of(id) is not str or not id:
        _require_text("id", id)
    if type_of(source) is not str or not source:
        _require_text("source", source)
    if type_of(type) is not str or not type:
        _require_text("type", type)
    if specversion != SPEC_VERSION:
        raise InvalidCloudEvent(
            "specversion", f"must be '{SPEC_VERSION}', got {quote(specversion)}"
        )
    if extensions:
        _check_extensions(extensions)
        # a copy: the caller's dict must not be a mutable back door
        extensions = MappingProxyType(dict(extensions))
    else:
        # an empty dict (or None) from the caller must not stay a mutable back door
        extensions = _EMPTY
    _set_id(event, id)
    _set_source(event, source)
    _set_type(event, type)
    _set_specversion(event, specversion)
    _set_datacontenttype(event, datacontenttype)
    _set_dataschema(event, dataschema)
    _set_subject(event, subject)
    _set_time(event, time)
    _set_extensions(event, extensions)
    _set_data(event, data)
    if (
        time is not None
        or datacontenttype is not None
        or subject is not None
        or dataschema is not None
    ):
        _check_optional(time, datacontenttype, subject, dataschema)


def _check_optional(time: Any, datacontenttype: Any, subject: Any, dataschema: Any) -> None:
    if time is not None:
        parse_time(time)
    if datacontenttype is not None and (
        type_of(datacontenttype) is not str or datacontenttype not in _GOOD_TYPES
    ):
        _check_content_type(datacontenttype)
    if subject is not None and (type_of(subject) is not str or not subject):
        _require_text("subject", subject)
    if dataschema is not None and (
        type_of(dataschema) is not str or not dataschema.startswith(_USUAL_SCHEMES)
    ):  # an http(s) URI is absolute: the usual case needs neither test below
        _require_text("dataschema", dataschema)
        if not _URI_SCHEME.match(dataschema):
            raise InvalidCloudEvent(
                "dataschema", f"must be an absolute URI, got {quote(dataschema)}"
            )


#: Content types already checked; a stream uses a handful, so the checks run once each.
#: Bounded in count and length, since the wire chooses them.
_GOOD_TYPES: set[str] = set()
_GOOD_TYPES_LIMIT = 1024
_GOOD_TYPES_LONGEST = 200


def _check_content_type(value: Any) -> None:
    """``datacontenttype`` travels as a header in every binary mode, where a control
    character (but tab) is refused and a lone surrogate cannot be written; and there a
    CloudEvents format would make a receiver read the data as the event itself."""
    if type_of(value) is not str or not value:
        _require_text("datacontenttype", value)
    if not (value.isascii() and value.isprintable()) and _NOT_HEADER_TEXT.search(value):
        raise InvalidCloudEvent(
            "datacontenttype",
            f"must not hold control characters or lone surrogates, got {quote(value)}",
        )
    if value.lstrip()[:23].lower() == "application/cloudevents":
        raise InvalidCloudEvent(
            "datacontenttype",
            f"names a CloudEvents format ({quote(value)}), which binary mode cannot carry as "
            "data: a receiver would read the data as the event itself; send a nested event "
            "as application/json",
        )
    # only an exact str is remembered: a subclass may compare equal and behave otherwise
    known = len(_GOOD_TYPES) < _GOOD_TYPES_LIMIT and len(value) <= _GOOD_TYPES_LONGEST
    if known and type_of(value) is str:
        _GOOD_TYPES.add(value)


# The slots' own setters: a frozen dataclass refuses setattr, and object.__setattr__
# looks the slot up by name each time (twice the cost, ten times per event).
_new_event = object.__new__
_set_id = CloudEvent.__dict__["id"].__set__
_set_source = CloudEvent.__dict__["source"].__set__
_set_type = CloudEvent.__dict__["type"].__set__
_set_specversion = CloudEvent.__dict__["specversion"].__set__
_set_datacontenttype = CloudEvent.__dict__["datacontenttype"].__set__
_set_dataschema = CloudEvent.__dict__["dataschema"].__set__
_set_subject = CloudEvent.__dict__["subject"].__set__
_set_time = CloudEvent.__dict__["time"].__set__
_set_extensions = CloudEvent.__dict__["extensions"].__set__
_set_data = CloudEvent.__dict__["data"].__set__


class _Unfrozen:
    """CloudEvent's slots without its frozen ``__setattr__``. :func:`from_attributes`
    fills one with plain attribute stores and then makes it a CloudEvent by assigning
    ``__class__``, which Python allows between classes of identical layout (same base,
    same slots). Ten slot setters called one by one cost three times as much, and this
    is the decode path of every event."""

    __slots__ = CloudEvent.__slots__


def _check_layout() -> None:
    """Fail at import, not on the first event, should the layouts ever differ."""
    probe = _Unfrozen()
    probe.__class__ = CloudEvent  # raises TypeError if the layouts differ


_check_layout()


#: Extension names already checked; events reuse a handful of names, so the regex runs once.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_LIMIT = 4096


def _check_extensions(extensions: Mapping[str, Any]) -> None:
    for name, value in extensions.items():
        if name not in _GOOD_NAMES:
            _check_extension_name(name)
        if type_of(value) is not str:
            _check_extension_value(name, value)


def _check_extension_name(name: Any) -> None:
    if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
        raise InvalidCloudEvent(
            shorten(name) if isinstance(name, str) else quote(name),
            "extension names must be lower-case letters and digits only",
        )
    if name in RESERVED_NAMES:
        raise InvalidCloudEvent(name, "is a reserved attribute name, not an extension")
    if len(_GOOD_NAMES) < _GOOD_NAMES_LIMIT:
        _GOOD_NAMES.add(name)


def _check_extension_value(name: str, value: Any) -> None:
    if type(value) is str:
        return
    if not isinstance(value, _EXTENSION_TYPES):
        raise InvalidCloudEvent(
            shorten(name),
            f"extension values must be string, integer, boolean or binary, "
            f"got {type(value).__name__}",
        )
    if isinstance(value, int) and not isinstance(value, bool) and not _INT_MIN <= value <= _INT_MAX:
        raise InvalidCloudEvent(
            shorten(name), f"integers must fit in 32 bits (spec), got {quote(value)}"
        )
