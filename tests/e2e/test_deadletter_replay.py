"""A sink that is down longer than the delivery policy allows, then dead-letter replay,
all in real processes on a Redis bus.

``fnevents run`` delivers N events to a sink answering 503; every one ends on the
trigger's dead-letter topic with the reason, counted by ``fnevents deadletters list
--json``. The sink comes back; ``fnevents deadletters replay`` delivers all N (counted
by unique id at the sink) and leaves the dead-letter topic empty.
"""

from __future__ import annotations

import asyncio
import collections

import orjson
import pytest
from redis.asyncio import Redis

from events.bus.letters import ERROR_ATTRIBUTES
from tests.e2e import processes
from tests.sink import RecordingSink, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TOTAL = 200


async def wait_for_length(raw: Redis, topic: str, length: int, process, log) -> None:
    async with asyncio.timeout(60):
        while await raw.xlen(topic) < length:
            assert process.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(0.05)


async def test_every_dead_letter_is_replayed_once_the_sink_is_back(tmp_path, redis_broker):
    down = True
    async with RecordingSink(lambda n: Reply(503, "maintenance") if down else Reply()) as sink:
        app = processes.trigger_on_redis(tmp_path, redis_broker.address, sink.url, retry=1)
        manifest = ["-f", str(app.manifest)]
        log = tmp_path / "fnevents.log"
        raw = Redis(host=redis_broker.host, port=redis_broker.port)
        process = processes.start(["run", *manifest, "--port", "0", "-q"], log)
        try:
            expected = await processes.publish_ticks(redis_broker.address, app.input_topic, TOTAL)
            await wait_for_length(raw, app.dead_letter_topic, TOTAL, process, log)
            listed = await processes.call(
                ["deadletters", "list", *manifest, "--trigger", app.trigger, "--json"]
            )
            down = False
            replayed = await processes.call(
                ["deadletters", "replay", *manifest, "--trigger", app.trigger, "-q"]
            )
            after = await processes.call(
                ["deadletters", "list", *manifest, "--trigger", app.trigger, "--json"]
            )
        finally:
            await processes.stopped(process)
            await raw.aclose()

    assert listed.status == 0, listed.err
    letters = orjson.loads(listed.out)["letters"]
    assert {x["id"] for x in letters} == expected and len(letters) == TOTAL
    reasons = collections.Counter((x["status"], x["attempts"], x["response"]) for x in letters)
    assert reasons == {("503", 2, "maintenance"): TOTAL}, reasons
    assert all(x["reason"] == f"{sink.url} answered HTTP 503" for x in letters)
    assert all(x["destination"] == sink.url for x in letters)

    assert replayed.status == 0, replayed.out + replayed.err
    assert f"replayed {TOTAL} of {TOTAL} letter(s), 0 failed" in replayed.out
    delivered = collections.Counter(event.id for event in sink.accepted)
    assert set(delivered) == expected, f"missing: {sorted(expected - set(delivered))[:5]}"
    duplicates = {i: n for i, n in delivered.items() if n > 1}
    assert not duplicates, f"replay delivered {len(duplicates)} event(s) more than once"
    assert all(not set(ERROR_ATTRIBUTES) & set(e.extensions) for e in sink.accepted)

    assert after.status == 0 and orjson.loads(after.out)["letters"] == [], after.out
