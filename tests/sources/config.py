"""What the source conformance suite (``tests/sources/suite.py``) needs to know about one
transport, as a base class each broker's config fills in, and the values it passes.

A config knows the settings of one event that reads a fresh place on the session broker
(:class:`Upstream`), how to put a raw message or a CloudEvent (:class:`Binding`) there
with a client we did not write and what the source must make of it (:class:`Sent`), and
what the transport cannot carry or do (``limits``, each with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from events.app.load import load_catalog
from events.bindings.data import encode_data, header_attributes
from events.cloudevent import CloudEvent
from sources.contract import Source
from sources.registry import make_source
from tests.manifests import documents
from tests.sources.harness import Recorder, Running, run

#: Limits a config may declare (``SourceConfig.limits``: name -> why).
CONTENT_TYPE = "a declared content type"
BROKEN_STRUCTURED = "a broken structured CloudEvent is rejected"
CLEAN_SPLIT = "replicas split the input cleanly"
COMMITTED_IN_ORDER = "a message is committed only once every one before it is too"


@dataclass(frozen=True)
class Upstream:
    """Where one test's messages go: its event's name and the broker-side name it reads
    (a stream, a topic, a topic prefix), on ``address``."""

    address: str
    event: str
    name: str


@dataclass(frozen=True)
class Sent:
    """One message put upstream, as the source must see it when it wraps or rejects it."""

    id: str  #: the id of the wrapped event (``rejected:`` + it, of the dead letter)
    raw: bytes  #: the bytes a dead letter keeps
    source: str  #: the ``source`` attribute of the wrapped event
    subject: str | None  #: its ``subject``
    time: str | None = None  #: the broker's timestamp, where the transport has one


@dataclass(frozen=True)
class Binding:
    """A CloudEvent as a transport's binding carries it: its attributes as they are (valid
    or not), its data as bytes, its content type."""

    attributes: Sequence[tuple[str, str]]
    data: bytes | None = None
    content_type: str | None = None

    @classmethod
    def of(cls, event: CloudEvent) -> Binding:
        return cls(list(header_attributes(event)), encode_data(event), event.datacontenttype)


class SourceConfig:
    """One transport, as the suite needs it. Subclasses define the fixture ``upstream``
    (a fresh :class:`Upstream` on the session broker) and the methods below."""

    kind: ClassVar[str]  #: the key under EventSource ``spec``
    eventsource: ClassVar[str] = "vehicles"
    wrapped_type: ClassVar[str]  #: the ``type`` of what it wraps
    #: for one message to reach the bus
    receive_timeout: ClassVar[float] = 5.0
    #: for a source started again to get back what it had not committed
    restart_timeout: ClassVar[float] = 5.0
    #: for two replicas to read every one of ``replica_messages``
    split_timeout: ClassVar[float] = 5.0
    replica_messages: ClassVar[int] = 20
    #: what the transport cannot carry or do: limit -> why
    limits: ClassVar[dict[str, str]] = {}

    def settings(self, upstream: Upstream) -> dict[str, object]:
        """The settings of the event that reads ``upstream``."""
        raise NotImplementedError

    def unreachable(self, upstream: Upstream, address: str) -> dict[str, object]:
        """Settings pointing the event at ``address``, where nothing listens."""
        raise NotImplementedError

    def describes(self, upstream: Upstream, address: str) -> str:
        """The startup line of the event reading ``upstream`` from ``address``."""
        raise NotImplementedError

    def cannot_reach(self, upstream: Upstream, address: str) -> str:
        """What the error says when nothing listens at ``address``."""
        raise NotImplementedError

    async def produce(
        self, upstream: Upstream, payload: bytes, content_type: str | None = None
    ) -> Sent:
        """Put ``payload`` upstream, declaring ``content_type`` if given."""
        raise NotImplementedError

    async def produce_many(self, upstream: Upstream, count: int) -> list[Sent]:
        """Put ``count`` messages upstream (``{"n": 0}`` ...)."""
        return [await self.produce(upstream, b'{"n": %d}' % n) for n in range(count)]

    async def produce_binding(self, upstream: Upstream, binding: Binding) -> Sent:
        """Put a CloudEvent upstream in the binding the transport has."""
        raise NotImplementedError

    # -- running it (a config overrides these where its transport needs more) ----------

    def manifests(self, upstream: Upstream, settings: dict[str, object]) -> str:
        events = {upstream.event: settings}
        return documents.EMBEDDED_BUS + documents.eventsource(self.eventsource, self.kind, events)

    def running(self, tmp_path: Path, upstream: Upstream, **settings: object) -> Running:
        """The event in a Runtime, reading ``upstream`` (``settings`` on top of its own)
        from the moment it is entered."""
        text = self.manifests(upstream, {**self.settings(upstream), **settings})
        return Running(tmp_path, text, self.eventsource, [upstream.event], self.receive_timeout)

    def source(
        self, tmp_path: Path, upstream: Upstream, settings: dict[str, object] | None = None
    ) -> Source:
        """The event's Source alone (``settings`` instead of its own if given), built from
        its manifest as the runtime builds it."""
        path = tmp_path / f"{upstream.event}.yaml"
        path.write_text(self.manifests(upstream, settings or self.settings(upstream)))
        (eventsource,) = load_catalog([str(path)], []).of_kind("EventSource")
        return make_source(eventsource, self.kind, upstream.event)

    async def start(self, source: Source, outlet: Recorder, upstream: Upstream) -> asyncio.Task:
        """Run ``source`` into ``outlet``; return once it reads what is produced next."""
        return run(source, outlet)

    @contextlib.asynccontextmanager
    async def replicas(
        self, tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[list[Running]]:
        """Two replicas of one manifest, both reading."""
        async with self.running(tmp_path, upstream) as one, self.running(tmp_path, upstream) as two:
            yield [one, two]

    def require(self, limit: str) -> None:
        if limit in self.limits:
            pytest.skip(f"{self.kind}: {self.limits[limit]}")
