"""``deadletters list`` and ``replay`` on every backend that keeps letters (real brokers).

Letters are written before anything has read the dead-letter topic, so each test also
checks that the replay group, created later, still finds them.
"""

from __future__ import annotations

import pytest

from events.bus.letters import ERROR_ATTRIBUTES
from tests.deadletters.conftest import letter
from tests.sink import Reply


async def test_list_shows_each_letter_and_takes_nothing(setup, sink) -> None:
    dead = "http://127.0.0.1:9/gone"
    await setup.write(*(letter(n, dead, body='{"error": "overloaded"}') for n in range(3)))

    first = await setup.listed()
    again = await setup.listed()

    assert [x["id"] for x in first] == ["ev-0", "ev-1", "ev-2"]
    assert again == first, "listing took letters away"
    shown = first[1]
    assert shown["destination"] == dead
    assert shown["status"] == "503"
    assert shown["attempts"] == 4
    assert shown["reason"] == f"{dead} answered 503"
    assert shown["response"] == '{"error": "overloaded"}'
    assert (shown["type"], shown["source"], shown["subject"]) == ("dev.test.tick", "/test", "tick")
    assert shown["data"] == {"n": 1}
    status, out, err = await setup.cli("deadletters", "list", "--trigger", setup.trigger, "--data")
    assert status == 0, err
    assert f"{setup.topic} (Trigger default/{setup.trigger}" in out and "3 letter(s)" in out
    assert "id ev-2" in out and "status 503" in out and "attempts 4" in out
    assert 'response \'{"error": "overloaded"}\'' in out and '{"n":2}' in out
    assert len(await setup.listed("--limit", "2")) == 2


async def test_replay_sends_originals_and_empties_the_topic(setup, sink) -> None:
    await setup.write(*(letter(n, sink.url) for n in range(5)))

    status, out, err = await setup.cli("deadletters", "replay", "--trigger", setup.trigger)

    assert status == 0, out + err
    assert sorted(e.id for e in sink.accepted) == [f"ev-{n}" for n in range(5)]
    for event in sink.accepted:
        assert not set(ERROR_ATTRIBUTES) & set(event.extensions), event.extensions
        assert event.data == {"n": int(event.id[3:])}
    assert f"{setup.topic}: replayed 5 of 5 letter(s), 0 failed" in out
    assert out.count("replayed     ev-") == 5
    assert await setup.listed() == []
    status, out, _ = await setup.cli("deadletters", "replay", "--trigger", setup.trigger)
    assert status == 0 and "replayed 0 of 0" in out
    assert len(sink.requests) == 5, "a second replay sent letters again"


async def test_replay_acks_only_what_was_delivered(setup, sink) -> None:
    """ev-2 is refused for good (400); the others are taken. On Redis replay goes on past
    the failure; on Kafka and JetStream it stops there (the group keeps a position)."""
    refusing = {"ev-2"}
    sink.by_event = lambda event, _: Reply(400, "no") if event.id in refusing else Reply()
    await setup.write(*(letter(n, sink.url) for n in range(5)))

    status, out, err = await setup.cli("deadletters", "replay", "--trigger", setup.trigger)

    assert status == 1, out + err
    positional = setup.backend != "redis"
    delivered = ["ev-0", "ev-1"] if positional else ["ev-0", "ev-1", "ev-3", "ev-4"]
    left = ["ev-2", "ev-3", "ev-4"] if positional else ["ev-2"]
    assert sorted(e.id for e in sink.accepted) == delivered
    assert "failed       ev-2 -> " in out and "answered HTTP 400" in out
    assert f"replayed {len(delivered)} of 5 letter(s), 1 failed (still on the topic)" in out
    remaining = await setup.listed()
    assert [x["id"] for x in remaining] == left
    assert remaining[0]["pending"] == (setup.backend != "kafka")  # Kafka: just an offset
    assert await setup.listed() == remaining, "listing took letters away"

    refusing.clear()  # the sink is fixed: the next replay takes the rest at once
    status, out, err = await setup.cli("deadletters", "replay", "--trigger", setup.trigger)
    assert status == 0, out + err
    assert sorted(e.id for e in sink.accepted) == [f"ev-{n}" for n in range(5)]
    assert len(sink.accepted) == 5, "a delivered letter was sent twice"
    assert await setup.listed() == []


async def test_limit_and_dry_run(setup, sink) -> None:
    await setup.write(*(letter(n, sink.url) for n in range(4)))

    status, out, _ = await setup.cli(
        "deadletters", "replay", "--trigger", setup.trigger, "--dry-run"
    )
    assert status == 0 and "4 letter(s) would be replayed (dry run)" in out
    assert out.count("would replay ev-") == 4 and sink.requests == []
    status, out, err = await setup.cli(
        "deadletters", "replay", "--trigger", setup.trigger, "--limit", "3"
    )
    assert status == 0, out + err
    assert sorted(e.id for e in sink.accepted) == ["ev-0", "ev-1", "ev-2"]
    assert [x["id"] for x in await setup.listed()] == ["ev-3"]


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_topic_destinations_and_overrides(setup, sink) -> None:
    """A poison letter goes back to the topic it was read from (``fnerrortopic``); one
    with no destination (a source's reject) fails until ``--to`` gives one."""
    back = f"{setup.topic}-input"
    poison = letter(0, sink.url).evolve(
        knativeerrordest=None, knativeerrorcode=None, knativeerrordata=None, fnerrortopic=back
    )
    rejected = letter(1, sink.url).evolve(knativeerrordest=None, knativeerrordata=None)
    async with setup.bus() as bus:
        reader = await bus.subscribe(back, "reader")
        await setup.write(poison, rejected)

        status, out, _ = await setup.cli("deadletters", "replay", "--trigger", setup.trigger)
        message = await anext(reader)
        await message.ack()
        await reader.close()
    assert status == 1
    assert message.event.id == "ev-0"
    assert not set(ERROR_ATTRIBUTES) & set(message.event.extensions)
    assert "ev-1 -> the letter records no destination" in out and "--to URL" in out
    assert [x["id"] for x in await setup.listed()] == ["ev-1"]

    status, out, err = await setup.cli(
        "deadletters", "replay", "--trigger", setup.trigger, "--to", sink.url
    )
    assert status == 0, out + err
    assert [e.id for e in sink.accepted] == ["ev-1"]


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_to_topic_publishes_every_letter_there(setup, sink) -> None:
    elsewhere = f"{setup.topic}-retry"
    await setup.write(*(letter(n, sink.url) for n in range(3)))
    async with setup.bus() as bus:
        reader = await bus.subscribe(elsewhere, "reader")
        status, out, err = await setup.cli(
            "deadletters", "replay", "--trigger", setup.trigger, "--to-topic", elsewhere
        )
        got = []
        for _ in range(3):
            message = await anext(reader)
            got.append(message.event)
            await message.ack()
        await reader.close()
    assert status == 0, out + err
    assert sorted(e.id for e in got) == ["ev-0", "ev-1", "ev-2"]
    assert all(not set(ERROR_ATTRIBUTES) & set(e.extensions) for e in got)
    assert f"-> topic {elsewhere}" in out and sink.requests == []


async def test_hundreds_of_letters_batched_by_the_broker(setup, sink) -> None:
    total = 300
    await setup.write_at_once(*(letter(n, sink.url) for n in range(total)))

    assert len(await setup.listed()) == total
    status, out, err = await setup.cli("deadletters", "replay", "--trigger", setup.trigger, "-q")

    assert status == 0, out + err
    assert out == f"{setup.topic}: replayed {total} of {total} letter(s), 0 failed\n"
    assert sorted(e.id for e in sink.accepted) == sorted(f"ev-{n}" for n in range(total))
    assert await setup.listed() == []


async def test_a_trigger_that_never_dead_lettered_has_nothing(setup, sink) -> None:
    assert await setup.listed() == []
    status, out, err = await setup.cli("deadletters", "replay", "--trigger", setup.trigger)
    assert status == 0, out + err
    assert out == f"{setup.topic}: replayed 0 of 0 letter(s), 0 failed\n"
