"""Dead letters for the console: list a topic's letters, replay them.

The same stores and replay as ``fnevents deadletters`` (:mod:`events.deadletters`):
letters are read as the group ``REPLAY_GROUP`` without taking them, and a replay
acks a letter only once its destination took it. A bus whose letters cannot be read
by another consumer (the embedded in-memory bus, MQTT, a Dapr sidecar) answers with
the reason instead.
"""

from __future__ import annotations

from typing import Any

from events.app.catalog import Catalog
from events.app.plans import bus_plan
from events.deadletters.replay import Replayer, ReplayOptions
from events.deadletters.stores import open_store
from events.errors import FnEventsError

LIST_LIMIT = 50


async def listing(catalog: Catalog, where: tuple[str, str], topic: str) -> dict[str, Any]:
    """``topic``'s letters (at most :data:`LIST_LIMIT`) with their error attributes, or
    why they cannot be listed."""
    plan = bus_plan(catalog, *where)
    result: dict[str, Any] = {"topic": topic, "bus": plan.describe()}
    try:
        store = open_store(plan)
    except FnEventsError as exc:
        return {**result, "unavailable": str(exc), "letters": []}
    try:
        letters = await store.browse(topic, LIST_LIMIT)
    except FnEventsError as exc:
        return {**result, "unavailable": str(exc), "letters": []}
    finally:
        await store.close()
    return {**result, "letters": [letter.summary(with_data=True) for letter in letters]}


async def replay(catalog: Catalog, where: tuple[str, str], topic: str) -> dict[str, Any]:
    """Replay ``topic``'s letters to where each was going; the report."""
    store = open_store(bus_plan(catalog, *where))
    try:
        report = await Replayer(store, ReplayOptions(wait=5.0), _quiet).replay(topic)
    finally:
        await store.close()
    return {
        "topic": topic,
        "listed": report.listed,
        "replayed": report.replayed,
        "failed": [{"id": letter.event.id, "reason": why} for letter, why in report.failed],
        "missing": report.missing,
        "stopped": report.stopped,
        "ok": report.ok,
    }


def _quiet(_what: str, _letter: object, _detail: str) -> None:
    """Replay's progress callback: the page shows the report instead."""
