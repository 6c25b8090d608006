"""A request body's ``Content-Encoding``, undone as the body arrives, within a limit.

gzip (and ``x-gzip``, RFC 9110 8.4.1.3) and deflate, zlib-wrapped as RFC 9110 says or
raw as some clients send it. The output never goes past the limit, so a small body
that inflates to gigabytes costs at most the limit; bytes after the end of the
compressed stream (a second gzip member, garbage) make the body undecodable.
"""

from __future__ import annotations

import zlib


class TooLarge(Exception):
    """The body, decompressed, is past the limit."""


class Unsupported(ValueError):
    """A ``Content-Encoding`` this server does not undo (a 415)."""


class Undecodable(ValueError):
    """The body does not decode as its ``Content-Encoding`` says (a 400)."""


class Inflate:
    """Decompresses one body as it arrives, never producing more than ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.produced = 0
        self.inflater: zlib._Decompress | None = None

    @classmethod
    def of(cls, header: str, limit: int) -> Inflate | None:
        """The decoder for a ``Content-Encoding`` header; None for identity."""
        encoding = header.strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            return cls(encoding, limit)
        if encoding in ("", "identity"):
            return None
        raise Unsupported(
            f"Content-Encoding {header!r} is not taken; send gzip, deflate or identity"
        )

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        if self.inflater is None:
            self.inflater = zlib.decompressobj(self._window(chunk))
        elif self.inflater.eof:
            raise self._past_the_end()
        try:
            out = self.inflater.decompress(chunk, self.limit + 1 - self.produced)
        except zlib.error:
            raise self._undecodable() from None
        self.produced += len(out)
        if self.produced > self.limit or self.inflater.unconsumed_tail:
            raise TooLarge
        if self.inflater.unused_data:
            raise self._past_the_end()
        return out

    def finish(self) -> bytes:
        """What is left, or :class:`Undecodable` if the compressed data ended early."""
        if self.inflater is None:
            return b""  # an empty body
        out = self.inflater.flush()
        if not self.inflater.eof:
            raise self._undecodable()
        return out

    def _window(self, first: bytes) -> int:
        if self.encoding != "deflate":
            return 16 + zlib.MAX_WBITS  # a gzip header and trailer
        # deflate should be zlib-wrapped (RFC 9110 8.4.1.2); some clients send it raw
        return zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS

    def _undecodable(self) -> Undecodable:
        return Undecodable(
            f"the body could not be read: it does not decode as Content-Encoding {self.encoding}"
        )

    def _past_the_end(self) -> Undecodable:
        return Undecodable(
            f"the body could not be read: bytes follow the end of its {self.encoding} data "
            "(one compressed stream is taken)"
        )
