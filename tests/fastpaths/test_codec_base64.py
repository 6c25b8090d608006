"""pybase64 (SIMD) in place of the stdlib's base64 (events/bindings/data.py).

``base64_bytes`` asks pybase64 first and lets the stdlib decide whenever pybase64
refuses, so it is safe exactly when pybase64 never accepts what
``base64.b64decode(text, validate=True)`` refuses and returns the same bytes when both
accept. A seeded generator makes strings on every edge of the alphabet and of padding
(``=`` anywhere and in any number, whitespace, ``-``/``_``, non-ASCII, lengths 0-4 mod
4), and every string of up to four characters from a small alphabet is tried too.
``base64_text`` must be ``base64.b64encode(raw).decode("ascii")`` for bytes, bytearray
and memoryview (contiguous or not).

``FNEVENTS_FASTPATH_CASES`` sets the number of cases per test (default 100,000).
"""

from __future__ import annotations

import base64
import itertools
import os
import random
from collections.abc import Callable
from typing import Any

import pytest

from events.bindings import data

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))
SEED = 20241204
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
EDGES = ["=", "==", "===", " ", "\n", "-", "_", "é", "\x00", "A", "/", "+"]

pytestmark = pytest.mark.skipif(data._pybase64 is None, reason="pybase64 is not installed")


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 -- any failure must match, type and words
        return type(exc).__name__, str(exc)


def some_text(rng: random.Random) -> str | bytes:
    raw = rng.randbytes(rng.randrange(0, 12))
    text = base64.b64encode(raw).decode("ascii")
    for _ in range(rng.choice([0, 0, 1, 2])):
        at = rng.randrange(0, len(text) + 1)
        roll = rng.random()
        if roll < 0.4:
            text = text[:at] + rng.choice(EDGES) + text[at:]
        elif roll < 0.7 and text:
            text = text[: at - 1] + text[at:]  # a character short
        else:
            text = text[:at] + rng.choice(ALPHABET) + text[at:]
    return text.encode("utf-8") if rng.random() < 0.1 else text


def mismatches(decode: Callable[[Any], bytes], texts: Any) -> tuple[list[str], int, int]:
    found: list[str] = []
    accepted = refused = 0
    for text in texts:
        fast = outcome(lambda t=text: decode(t))
        general = outcome(lambda t=text: base64.b64decode(t, validate=True))
        accepted += general[0] == "ok"
        refused += general[0] != "ok"
        if fast != general and len(found) < 10:
            found.append(f"{text!r}: fast {fast}, general {general}")
    return found, accepted, refused


def generated(cases: int) -> Any:
    rng = random.Random(SEED)
    return (some_text(rng) for _ in range(cases))


def test_decoding_is_the_stdlibs_on_generated_strings() -> None:
    found, accepted, refused = mismatches(data.base64_bytes, generated(CASES))
    print(f"\nbase64 decode: {CASES} cases, {accepted} accepted, {refused} refused")
    assert found == []
    assert accepted > CASES // 4 and refused > CASES // 4


def test_decoding_is_the_stdlibs_on_every_short_string() -> None:
    small = "AB/+=é -"
    texts = ("".join(t) for n in range(5) for t in itertools.product(small, repeat=n))
    found, accepted, refused = mismatches(data.base64_bytes, texts)
    assert found == []
    assert accepted and refused


def test_the_comparison_catches_a_planted_bug() -> None:
    """Decoding without validation (pybase64's default) would accept junk the stdlib
    refuses; the generator must notice."""
    import pybase64

    found, _, _ = mismatches(lambda t: pybase64.b64decode(t), generated(3_000))
    assert found


def test_encoding_is_the_stdlibs() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(CASES // 10):
        raw = rng.randbytes(rng.randrange(0, 40))
        for value in (raw, bytearray(raw), memoryview(raw), memoryview(raw)[::2]):
            fast = outcome(lambda v=value: data.base64_text(v))
            general = outcome(lambda v=value: base64.b64encode(v).decode("ascii"))
            assert fast == general, value
