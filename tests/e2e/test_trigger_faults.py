"""kill -9 of ``fnevents run`` while its Trigger delivers to a real HTTP sink (Redis bus),
then a restart: every published event reaches the sink (counted by unique id), and
the duplicates that at-least-once allows are counted and reported.

What a kill leaves behind: events the sink took whose XACK had not landed (delivered
again after the restart: duplicates), and entries read but not yet delivered (pending
with the dead member, claimed by the new one after processingTimeout, 1 s here).
"""

from __future__ import annotations

import asyncio
import collections

import pytest
from redis.asyncio import Redis

from tests.e2e import processes
from tests.sink import RecordingSink, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TOTAL = 2000
#: the sink takes 20 ms per event and the subscriber keeps 8 in flight (about 400/s),
#: so the kill lands mid-stream whatever the machine's speed
SINK_DELAY = 0.02
MAX_IN_FLIGHT = 8


async def test_kill_9_mid_stream_loses_nothing(tmp_path, redis_broker) -> None:
    async with RecordingSink(lambda n: Reply(delay=SINK_DELAY)) as sink:
        app = processes.trigger_on_redis(
            tmp_path, redis_broker.address, sink.url, max_in_flight=MAX_IN_FLIGHT
        )
        log = tmp_path / "fnevents.log"
        run = ["run", "-f", str(app.manifest), "--port", "0", "-q"]
        raw = Redis(host=redis_broker.host, port=redis_broker.port)
        expected = await processes.publish_ticks(redis_broker.address, app.input_topic, TOTAL)
        process = processes.start(run, log)
        at_kill = pending = -1  # (if the kill never came)
        try:
            async with asyncio.timeout(30):  # a fresh interpreter on a busy machine
                while len(sink.accepted) < TOTAL // 4:
                    assert process.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.005)
            process.kill()  # SIGKILL: no drain, no give-back, acks in flight are lost
            await asyncio.to_thread(process.wait, 10)
            at_kill = len(set(e.id for e in sink.accepted))
            pending = (await raw.xpending(app.input_topic, f"default-{app.trigger}"))["pending"]
            assert at_kill < TOTAL, "killed mid-stream"

            process = processes.start(run, log)
            async with asyncio.timeout(60):
                while not expected.issubset(e.id for e in sink.accepted):
                    assert process.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pass  # the assertions below say what is missing
        finally:
            await processes.stopped(process)
            await raw.aclose()
    assert at_kill >= 0, f"the sink had not taken {TOTAL // 4} within 30s:\n{log.read_text()}"
    delivered = collections.Counter(e.id for e in sink.accepted)
    duplicates = {i: n for i, n in delivered.items() if n > 1}
    stats = (
        f"{at_kill} of {TOTAL} at the sink at the kill, {pending} pending with the killed "
        f"process; {len(duplicates)} duplicate(s), {sum(delivered.values())} deliveries"
    )
    missing = expected - set(delivered)
    assert not missing, f"lost {len(missing)} ({stats}):\n{log.read_text()[-3000:]}"
    assert set(delivered) == expected, f"events that were never published ({stats})"
    print(stats)  # shown with -s: what at least once cost here
