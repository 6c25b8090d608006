"""The stall report end to end: ``fnevents run --stall-after 1`` with a Trigger whose sink
holds every request. With events waiting on the broker and nothing moving, /readyz
answers 503 naming the trigger input, the topic and what waits, and the log says so
once; when the sink answers again, /readyz is 200 and the log says it moves again."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.e2e import processes
from tests.faults import harness
from tests.helpers import until
from tests.sink import RecordingSink

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TIMEOUT = 20.0


async def test_a_stalled_trigger_makes_readyz_say_why_until_it_moves(
    redis_broker, tmp_path
) -> None:
    setup = harness.BUSES["redis"]
    async with RecordingSink() as sink:
        sink.gate = asyncio.Event()  # every request waits: nothing is settled
        app = processes.trigger_on(
            tmp_path, setup.manifest(redis_broker.address), sink.url, max_in_flight=2
        )
        async with setup.bus(redis_broker.address) as bus:
            await processes.publish_all(bus, app.input_topic, [f"s-{n}" for n in range(10)])
        log = tmp_path / "fnevents.log"
        run = ["run", "-f", str(app.manifest), "--port", "0", "--stall-after", "1"]
        process = processes.start(run, log)
        try:
            ops = await asyncio.to_thread(processes.ops_address, log, process)

            async def readyz_says(status: int, begins: str = "") -> bool:
                answer, body = await processes.readiness(ops)
                return answer == status and body.startswith(begins)

            stalled = lambda: readyz_says(503, "stalled")  # noqa: E731
            await until(stalled, "/readyz reports the stall", TIMEOUT)
            _, body = await processes.readiness(ops)
            assert re.match(
                rf"stalled: trigger default/{app.trigger} input tick: no progress on "
                rf"{app.input_topic} for \d+s while \d+ event\(s\) wait on the broker for "
                rf"group default-{app.trigger}\n$",
                body,
            ), body
            text = log.read_text()
            assert text.count("no progress on") == 1, text
            sink.gate.set()
            await until(lambda: readyz_says(200), "/readyz is ready again", TIMEOUT)
            await until(lambda: len(sink.accepted) == 10, "all delivered", TIMEOUT)
            assert f"input tick: moving again on {app.input_topic}" in log.read_text()
        finally:
            await processes.stopped(process)


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
async def test_a_bad_stall_after_is_a_usage_error_that_says_what_it_takes(
    value: str, tmp_path
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(harness.BUSES["redis"].manifest("127.0.0.1:1"))
    finished = await processes.call(["run", "-f", str(manifest), "--stall-after", value])
    assert finished.status == 2
    assert (
        f"argument --stall-after: expected a number of seconds, 0 or more (0 turns it off), "
        f"not {value!r}" in finished.err
    ), finished.err
