"""Charsets: which ones a payload may declare, and text decoded by them.

A charset must name a *text* encoding the standard library has (``rot13``,
``base64``, ``zlib`` and the like are byte transforms, not charsets), and text
decoded by it must survive being written again, both as UTF-8 (the JSON event
format, Dapr's envelope) and in its own charset (binary mode). Errors are
:class:`~events.errors.InvalidCloudEvent` naming ``datacontenttype`` for the
charset and ``data`` for the bytes.
"""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import functools
import pkgutil
import re

from events.errors import InvalidCloudEvent, quote, shorten

#: A charset name: RFC 2978's characters (and ``.``/``:``, which IANA aliases use), at most
#: 40 of them.
_CHARSET_NAME = re.compile(r"[A-Za-z0-9!#$%&'+\-^_`{}~.:]{1,40}")
#: Content type -> codec of its charset: a stream uses a handful of content types, each
#: parsed once. Bounded in count and length, since the wire chooses them.
_CODECS: dict[str, str] = {}
_CODECS_LIMIT = 1024
_CODECS_LONGEST = 200


def charset(content_type: str | None) -> str:
    """The codec named by the ``charset`` parameter, UTF-8 when absent; InvalidCloudEvent
    names ``datacontenttype`` when it is unknown or not a text encoding."""
    if not content_type or ";" not in content_type:
        return "utf-8"
    codec = _CODECS.get(content_type)
    if codec is None:
        codec = _parameter(content_type)
        if len(_CODECS) < _CODECS_LIMIT and len(content_type) <= _CODECS_LONGEST:
            _CODECS[content_type] = codec
    return codec


def _parameter(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return text_codec(value.strip().strip('"'))
    return "utf-8"


def text_codec(name: str) -> str:
    """The Python codec for the charset ``name``: a text encoding, or InvalidCloudEvent."""
    # Only names the standard library's codecs answer to reach codecs.lookup: it caches
    # every name it does not know, forever, after trying to import a module of that name.
    if not (_CHARSET_NAME.fullmatch(name) and _stdlib_codec(name)):
        raise InvalidCloudEvent("datacontenttype", f"names an unknown charset {quote(name)}")
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise InvalidCloudEvent("datacontenttype", f"names an unknown charset {name!r}") from None
    try:
        " ".encode(codec)  # str.encode refuses what is not a text encoding (rot13, zlib...)
    except (LookupError, UnicodeError):  # "undefined" is text, but codes nothing
        raise InvalidCloudEvent(
            "datacontenttype", f"names charset {name!r}, which is not a text encoding"
        ) from None
    return codec


def _stdlib_codec(name: str) -> bool:
    """Whether ``name`` is one the standard library's codec search can find (as
    ``codecs.lookup`` and ``encodings.search_function`` normalize it)."""
    normal = encodings.normalize_encoding(name.lower().replace(" ", "-"))
    names = _stdlib_codec_names()
    return normal in names or normal.replace(".", "_") in names


@functools.cache
def _stdlib_codec_names() -> frozenset[str]:
    modules = {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    return frozenset(encodings.aliases.aliases) | modules


def decode_text(body: bytes, content_type: str | None) -> str:
    """``body`` as text in the content type's charset (UTF-8 when none is named)."""
    codec = charset(content_type)
    try:
        text = bytes(body).decode(codec)
    except ValueError as exc:  # UnicodeDecodeError, or a codec's own complaint
        problem = exc.reason if isinstance(exc, UnicodeDecodeError) else exc
        where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        raise InvalidCloudEvent(
            "data", f"is not {codec} text as declared ({shorten(str(problem))}{where})"
        ) from None
    if codec != "utf-8" and not written_back(text, codec):
        raise InvalidCloudEvent(
            "data", f"decodes as {codec} to text that cannot be written back unchanged"
        )
    return text


def written_back(text: str, codec: str) -> bool:
    """Whether ``text`` survives both encodings it meets on delivery: UTF-8 (the JSON
    event format, Dapr's envelope) and its own charset (binary mode). A UTF-8 decode
    always does; others may not (lone surrogates from ``utf-7``, ``unicode_escape``...)."""
    try:
        text.encode("utf-8")
        return text.encode(codec).decode(codec) == text
    except ValueError:
        return False


def with_utf8(content_type: str) -> str:
    """``content_type`` with its ``charset`` parameter made ``utf-8``."""
    media, *params = content_type.split(";")
    kept = [p.strip() for p in params if p.partition("=")[0].strip().lower() != "charset"]
    return "; ".join([media.strip(), *kept, "charset=utf-8"])
