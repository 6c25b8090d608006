"""HTTP ingest's and the sources' shortcuts against the general code they stand for.

- :func:`sources.http.claims_cloudevent` looks two names up in a request's case-insensitive
  headers instead of lower-casing every header into a dict as
  :func:`events.bindings.http.is_cloudevent` does: generated header sets (names in any
  case, repeated, ``ce-`` look-alikes, non-ASCII names, content types with parameters,
  spaces and case) must give the same answer.
- :func:`sources.normalize.stamp` (behind ``now()``, the time of every wrapped event)
  caches the formatted second: generated instants from 1970 to 9999, many within one
  second, must read as ``datetime.isoformat`` (what ``now_rfc3339`` uses) writes them.
- :func:`sources.normalize.content_ids` hashes a fixed first part once: generated paths
  and bodies must give ``content_id``'s ids.

``FNEVENTS_FASTPATH_CASES`` sets the number of cases (default 100,000).
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

from multidict import CIMultiDict, CIMultiDictProxy

from events.bindings.http import is_cloudevent
from sources import http as ingest
from sources.normalize import content_id, content_ids, stamp

CASES = int(os.environ.get("FNEVENTS_FASTPATH_CASES", "100000"))

_NAMES = [
    "ce-specversion",
    "CE-SpecVersion",
    "Ce-Specversion",
    "ce-specversio",
    "ce-specversionx",
    "ce_specversion",
    "ce-type",
    "ce-id",
    "Content-Type",
    "content-type",
    "CONTENT-TYPE",
    "Content-Typ",
    "Content-Type2",
    "Host",
    "Accept",
    "Idempotency-Key",
    "X-Other",
    "ce-specver\u017fion",  # long s: upper-cases to S, lower-cases to itself
    "\u212aontent-type",  # Kelvin sign: lower-cases to k
    "ce-spec\u0130version",  # dotted capital I: lower-cases to two characters
]
_MEDIA = [
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "Application/CloudEvents+JSON",
    "application/cloudevents",
    "application/cloudevent+json",
    "text/plain",
    "application/octet-stream",
    "",
    "application/cloudevents+avro",
]


def _content_type(rng: random.Random) -> str:
    value = rng.choice(_MEDIA)
    if rng.random() < 0.3:
        value = rng.choice([" ", "\t", "  "]) + value
    if rng.random() < 0.3:
        value += rng.choice([" ", ";", "; charset=utf-8", ";charset=latin-1", " ; x=y"])
    if rng.random() < 0.05:
        value = rng.choice(["", ";", " ; ", "\u0130", "application/cloudevents\u0130"])
    return value


def _headers(rng: random.Random) -> CIMultiDictProxy[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for _ in range(rng.randrange(0, 7)):
        name = rng.choice(_NAMES)
        if rng.random() < 0.2:  # any case of a known name
            name = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)
        value = _content_type(rng) if "ype" in name.lower() else rng.choice(["1.0", "x", ""])
        headers.add(name, value)
    return CIMultiDictProxy(headers)


def test_claims_cloudevent_answers_as_is_cloudevent() -> None:
    rng = random.Random(2024)
    mismatches = []
    claimed = 0
    for case in range(CASES):
        headers = _headers(rng)
        ours, theirs = ingest.claims_cloudevent(headers), is_cloudevent(headers)
        claimed += theirs
        if ours != theirs:
            mismatches.append((case, list(headers.items()), ours, theirs))
            if len(mismatches) > 20:
                break
    assert not mismatches
    assert CASES // 10 < claimed < CASES - CASES // 10  # both answers were exercised


def _reference_stamp(ns: int) -> str:
    # now_rfc3339's formula, for the instant time_ns gave (datetime.now truncates to
    # the microsecond)
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return instant.isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_stamp_writes_what_now_rfc3339_writes() -> None:
    rng = random.Random(99)
    last_second = 253_402_300_799  # 9999-12-31T23:59:59
    mismatches = []
    ns = rng.randrange(0, last_second * 10**9)
    for case in range(CASES):
        roll = rng.random()
        if roll < 0.5:  # within the same second or the next few: the cached text
            ns = min(ns + rng.randrange(0, 3 * 10**9), last_second * 10**9)
        elif roll < 0.6:  # a second's edges
            ns = rng.randrange(0, last_second) * 10**9 + rng.choice([0, 999, 10**9 - 1])
        else:
            ns = rng.randrange(0, last_second * 10**9 + 10**9)
        if stamp(ns) != _reference_stamp(ns):
            mismatches.append((case, ns, stamp(ns), _reference_stamp(ns)))
            if len(mismatches) > 20:
                break
    assert not mismatches


def test_content_ids_match_content_id() -> None:
    rng = random.Random(5)
    paths = ["/", "/readings", "/a/b?c", "/é", "/\x00", ""]
    by_path = {path: content_ids(path) for path in paths}
    mismatches = []
    for case in range(CASES):
        path = rng.choice(paths)
        body = rng.randbytes(rng.randrange(0, 300))
        if by_path[path](body) != content_id(path, body):
            mismatches.append((case, path, body))
            if len(mismatches) > 20:
                break
    assert not mismatches
