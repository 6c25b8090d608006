"""The source conformance suite: what every broker-fed EventSource does, as test cases.

The rules are README's "Sources" (``sources/normalize.py``): a plain payload is wrapped
with a type, source and subject that say where it came from and an id that stays the
same on redelivery; a CloudEvent passes through unchanged in whatever binding the
transport has; input that cannot become an event goes to the EventSource's dead letter
and the source keeps going; the upstream position is committed only once the bus holds
the event; replicas share the input; an unreachable broker is reported plainly.

A broker's test module joins in a few lines, FastStream style::

    class TestRedisSource(RedisSourceConfig, SourceConformance):
        pass

where the config (a :class:`~tests.sources.config.SourceConfig`) knows the transport:
the settings of one event, how to put a raw message or a CloudEvent upstream with a
client we did not write, and what the transport cannot carry (``limits``, with the
reason: those cases skip, or leave that input out, as the bus suite does). Cases run the
source as ``fnevents run`` does, in a Runtime on the embedded bus
(:class:`~tests.sources.harness.Running`), or, for what happens upstream, the Source
alone with a :class:`~tests.sources.harness.Recorder` for an outlet.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest

from events.bindings.data import MAX_DATA_DEPTH
from events.bindings.http import from_http, to_binary, to_structured
from events.bindings.structured import from_json, to_json
from events.cloudevent import CloudEvent
from events.errors import BusError, FnEventsError
from tests.brokers.servers import free_port
from tests.helpers import until
from tests.sources.config import (
    BROKEN_STRUCTURED,
    CLEAN_SPLIT,
    COMMITTED_IN_ORDER,
    CONTENT_TYPE,
    Binding,
    SourceConfig,
    Upstream,
)
from tests.sources.harness import PROBE, Recorder, Running, stop

REJECTED = "dev.fnevents.source.rejected"
#: Input that claims to be a CloudEvent and is not one.
STRUCTURED_NO_ID = b'{"specversion": "1.0", "source": "/s", "type": "t"}'
STRUCTURED_NO_SOURCE = b'{"specversion": "1.0", "id": "x", "type": "t"}'
TRUNCATED = b'{"specversion": "1.0", "id": "y", "source": "/s", "typ'
NO_ID = [("specversion", "1.0"), ("source", "/vehicles/7"), ("type", "reading")]
#: A CloudEvent with extensions (a trace, a partition key), as producers we did not write
#: send them.
READING = CloudEvent(
    id="reading-1",
    source="/vehicles/7",
    type="telemetry.reading",
    subject="v7",
    time="2024-05-01T12:30:45Z",
    datacontenttype="application/json",
    extensions={
        "fleet": "north",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "partitionkey": "v7",
    },
    data={"speed": 120},
)


class SourceConformance(SourceConfig):
    """The cases. Each runs for every config that joins."""

    # -- what input becomes ----------------------------------------------------------

    async def test_plain_json_is_wrapped_with_where_it_came_from(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        async with self.running(tmp_path, upstream) as source:
            sent = await self.produce(upstream, b'{"vehicle": "v7", "speed": 91.5}')
            event = await source.next()
        assert event.type == self.wrapped_type
        assert (event.source, event.subject) == (sent.source, sent.subject)
        assert event.id == sent.id, "the id is the same every time this message is read"
        assert (event.datacontenttype, event.data) == (
            "application/json",
            {"vehicle": "v7", "speed": 91.5},
        )
        assert event.time is not None
        if sent.time is not None:
            assert event.time == sent.time, "time is the broker's timestamp"

    async def test_what_is_not_json_is_wrapped_as_bytes_or_text(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        binary = bytes(range(256))
        async with self.running(tmp_path, upstream) as source:
            sent = [await self.produce(upstream, p) for p in (binary, b"speed=80", b"")]
            got = [await source.next() for _ in sent]
        raw, text, empty = got
        assert (raw.datacontenttype, raw.data) == ("application/octet-stream", binary)
        assert (text.datacontenttype, text.data) == ("text/plain", "speed=80")
        assert (empty.datacontenttype, empty.data) == ("text/plain", "")
        assert [e.id for e in got] == [s.id for s in sent], "in the order they were sent"
        assert len({e.id for e in got}) == 3
        assert [e.subject for e in got] == [s.subject for s in sent]

    async def test_a_declared_content_type_is_honoured(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        self.require(CONTENT_TYPE)
        async with self.running(tmp_path, upstream) as source:
            sent = await self.produce(upstream, b"v1,80,55\n", "text/csv")
            event = await source.next()
        assert (event.type, event.id) == (self.wrapped_type, sent.id)
        assert (event.datacontenttype, event.data) == ("text/csv", "v1,80,55\n")

    async def test_text_is_decoded_by_its_declared_charset_and_delivers_as_it_came(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        """The rule HTTP ingest and every binding follow (events.bindings.data): the
        declared charset decodes the text, the type is kept, and binary mode writes the
        text back in that charset."""
        self.require(CONTENT_TYPE)
        texts = [
            ("text/plain; charset=utf-16", "héllo ☃ 😀", "utf-16"),
            ("text/csv; charset=iso-8859-1", "café,crème\n", "latin-1"),
        ]
        async with self.running(tmp_path, upstream) as source:
            for content_type, text, codec in texts:
                await self.produce(upstream, text.encode(codec), content_type)
            got = [await source.next() for _ in texts]
        for event, (content_type, text, codec) in zip(got, texts, strict=True):
            assert (event.datacontenttype, event.data) == (content_type, text)
            headers, body = to_binary(event)
            assert body.decode(codec) == text, "binary mode writes it in its declared charset"
            assert from_http(headers, body) == [event]
            assert from_http(*to_structured(event)) == [event]

    async def test_what_a_declared_charset_cannot_carry_goes_to_the_dead_letter(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        self.require(CONTENT_TYPE)
        bad = [
            (b"uryyb", "text/plain; charset=rot13", "charset 'rot13', which is not a text"),
            (b"aGk=", "text/plain; charset=base64", "charset 'base64', which is not a text"),
            (b"hello", "text/plain; charset=no-such-set", "unknown charset 'no-such-set'"),
            (b"caf\xe9", "text/plain; charset=utf-8", "is not utf-8 text as declared"),
            (b"caf\xe9", "text/plain", "is not utf-8 text as declared"),
        ]
        async with self.running(tmp_path, upstream) as source:
            sent = [await self.produce(upstream, raw, ct) for raw, ct, _ in bad]
            good = await self.produce(upstream, "café".encode("latin-1"), "text/plain; charset=l1")
            letters = [await source.next(source.dead) for _ in bad]
            after = await source.next()
        assert [letter.id for letter in letters] == [f"rejected:{s.id}" for s in sent]
        assert [letter.data for letter in letters] == [raw for raw, _, _ in bad], "raw bytes"
        for letter, (_, _, reason) in zip(letters, bad, strict=True):
            assert reason in letter.extensions["fnerrorreason"]
        assert (after.id, after.data) == (good.id, "café"), "the source kept going"

    async def test_json_nested_deeper_than_can_be_delivered_goes_to_the_dead_letter(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        """orjson reads 1,024 levels but writes 254: such an event would be taken, then
        fail every delivery and every replay. It is refused where it comes in."""
        deep = b"[" * (MAX_DATA_DEPTH + 1) + b"]" * (MAX_DATA_DEPTH + 1)
        structured = b'{"specversion": "1.0", "id": "d", "source": "/s", "type": "t", "data": '
        deepest = b"[" * MAX_DATA_DEPTH + b"]" * MAX_DATA_DEPTH
        async with self.running(tmp_path, upstream) as source:
            bad = [await self.produce(upstream, p) for p in (deep, structured + deep + b"}")]
            good = await self.produce(upstream, deepest)
            letters = [await source.next(source.dead) for _ in bad]
            after = await source.next()
        assert [letter.id for letter in letters] == [f"rejected:{s.id}" for s in bad]
        for letter in letters:
            assert (
                f"nested more than {MAX_DATA_DEPTH} levels deep"
                in (letter.extensions["fnerrorreason"])
            )
        assert after.id == good.id, "as deep as can be delivered is taken"
        assert orjson.dumps(after.data) == deepest
        assert from_http(*to_structured(after)) == [after]

    async def test_a_structured_cloudevent_passes_through_unchanged(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        body = to_json(READING)
        bare = orjson.dumps({"specversion": "1.0", "id": "d-1", "source": "app", "type": "t"})
        async with self.running(tmp_path, upstream) as source:
            await self.produce(upstream, body)
            await self.produce(upstream, bare)
            first, second = await source.next(), await source.next()
        assert first == from_json(body) == READING
        assert second == from_json(bare), "a JSON object with specversion is a CloudEvent"

    async def test_a_structured_cloudevent_declared_by_its_content_type_passes_through(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        self.require(CONTENT_TYPE)
        body = to_json(READING)
        async with self.running(tmp_path, upstream) as source:
            await self.produce(upstream, body, "application/cloudevents+json; charset=UTF-8")
            event = await source.next()
        assert event == READING

    async def test_a_cloudevent_in_the_transports_binding_passes_through_unchanged(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        async with self.running(tmp_path, upstream) as source:
            await self.produce_binding(upstream, Binding.of(READING))
            event = await source.next()
        assert event == READING
        assert event.extensions == READING.extensions

    async def test_bad_input_goes_to_the_dead_letter_and_the_source_keeps_going(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        declared = [(STRUCTURED_NO_ID, None, "invalid CloudEvent attribute 'id'")]
        declared.append((STRUCTURED_NO_SOURCE, None, "invalid CloudEvent attribute 'source'"))
        if CONTENT_TYPE not in self.limits:
            reason = "declared application/json but is not valid JSON"
            declared.append((b"{not json", "application/json", reason))
        if BROKEN_STRUCTURED not in self.limits:
            declared.append((TRUNCATED, None, "not valid JSON"))
        async with self.running(tmp_path, upstream) as source:
            binding = await self.produce_binding(upstream, Binding(NO_ID, b'{"speed": 1}'))
            bad = [(binding, "invalid CloudEvent attribute 'id'")]
            for payload, content_type, reason in declared:
                bad.append((await self.produce(upstream, payload, content_type), reason))
            good = await self.produce(upstream, b'{"speed": 3}')
            letters = [await source.next(source.dead) for _ in bad]
            after = await source.next()
            rejected = source.counter("source_rejected")
            metrics = source.exposition()
        assert [letter.type for letter in letters] == [REJECTED] * len(bad)
        assert [letter.id for letter in letters] == [f"rejected:{sent.id}" for sent, _ in bad]
        assert [letter.data for letter in letters] == [sent.raw for sent, _ in bad], "raw bytes"
        for letter, (_, reason) in zip(letters, bad, strict=True):
            assert reason in letter.extensions["fnerrorreason"]
        assert (after.id, after.data) == (good.id, {"speed": 3}), "the source kept going"
        assert rejected == len(bad)
        assert f'fnevents_source_rejected_total{{source="{source.label}"}} {len(bad)}.0' in metrics

    # -- committed only once the bus holds it -------------------------------------------

    async def test_a_failing_emit_ends_the_run_and_the_input_comes_back_with_its_id(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        outlet = Recorder(fail=1)
        task = await self.start(self.source(tmp_path, upstream), outlet, upstream)
        sent = await self.produce(upstream, b"1")
        with pytest.raises(BusError, match="the bus is down"):
            await asyncio.wait_for(task, self.receive_timeout)
        task = await self.start(self.source(tmp_path, upstream), outlet, upstream)
        try:
            await outlet.wait_for(1, self.restart_timeout)
        finally:
            await stop(task)
        assert outlet.events[0].data == 1
        assert outlet.events[0].id == outlet.failed[0] == sent.id

    async def test_input_whose_emit_never_returned_comes_back_after_a_restart(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        """Messages 0-2 are emitted; emit of 3 never returns (as a bus that stopped
        accepting; 4-7 may be emitted meanwhile); the source is stopped. Started again
        with the same session or group, it gets 3 again with the id it had, and every
        message whose emit had not returned; where commits are in order, exactly 3-7."""
        first = Recorder(stall=3)
        task = await self.start(self.source(tmp_path, upstream), first, upstream)
        sent = [await self.produce(upstream, str(n).encode()) for n in range(8)]
        await asyncio.wait_for(first.stalling.wait(), self.receive_timeout)
        await stop(task)
        assert first.data[:3] == [0, 1, 2] and 3 not in first.data
        assert first.stalled is not None and first.stalled.id == sent[3].id
        in_order = COMMITTED_IN_ORDER not in self.limits
        back = set(range(3, 8)) if in_order else {n for n in range(3, 8) if n not in first.data}

        second = Recorder()
        task = await self.start(self.source(tmp_path, upstream), second, upstream)
        try:
            await until(lambda: back <= set(second.data), "they came back", self.restart_timeout)
        finally:
            await stop(task)
        again = next(e for e in second.events if e.data == 3)
        assert again.id == sent[3].id, "the same id as the first time"
        if in_order:
            assert sorted(second.data[:5]) == [3, 4, 5, 6, 7], f"redelivered: {second.data}"

    # -- replicas --------------------------------------------------------------------------

    async def test_replicas_read_every_message_between_them(
        self, tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        got: list[list[CloudEvent]] = [[], []]

        async def collect(replica: Running, into: list[CloudEvent]) -> None:
            async for message in replica.events:
                into.append(message.event)
                await message.ack()

        async with self.replicas(tmp_path, upstream, monkeypatch) as replicas:
            tasks = [asyncio.create_task(collect(r, i)) for r, i in zip(replicas, got, strict=True)]
            try:
                sent = await self.produce_many(upstream, self.replica_messages)
                expected = {s.id for s in sent}

                def all_read() -> bool:
                    return expected <= {e.id for into in got for e in into}

                await until(all_read, "every message reached a replica", self.split_timeout)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        ids = [[e.id for e in into if e.data != PROBE.decode()] for into in got]
        assert set(ids[0]) | set(ids[1]) == expected, "nothing lost, nothing else"
        if CLEAN_SPLIT not in self.limits:
            assert sorted(ids[0] + ids[1]) == sorted(expected), "each message once"
            assert ids[0] and ids[1], f"both took a share: {len(ids[0])}/{len(ids[1])}"

    # -- an unreachable broker ---------------------------------------------------------

    async def test_an_unreachable_broker_is_reported_plainly_and_retried(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        address = f"127.0.0.1:{free_port()}"
        text = self.manifests(upstream, self.unreachable(upstream, address))
        # not the config's own ``running``, which may wait until the source reads: it never will
        events, timeout = [upstream.event], self.receive_timeout
        unreachable = Running(tmp_path, text, self.eventsource, events, timeout)
        async with unreachable as source:

            def reported() -> bool:
                return "retrying with backoff" in source.output

            await until(reported, "the source reported the outage", self.receive_timeout)
            output, metrics = source.output, source.exposition()
        assert self.describes(upstream, address) in output, "the startup line says where"
        assert self.cannot_reach(upstream, address) in output
        assert "Traceback" not in output
        assert f'fnevents_source_errors_total{{source="{source.label}"}}' in metrics

    async def test_an_unreachable_broker_ends_the_run_with_a_retriable_error(
        self, tmp_path: Path, upstream: Upstream
    ) -> None:
        address = f"127.0.0.1:{free_port()}"
        source = self.source(tmp_path, upstream, self.unreachable(upstream, address))
        message = re.escape(self.cannot_reach(upstream, address))
        with pytest.raises(FnEventsError, match=message) as caught:
            await asyncio.wait_for(source.run(Recorder().outlet), self.receive_timeout)
        assert caught.value.retriable
