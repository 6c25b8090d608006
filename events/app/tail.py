"""``fnevents tail``: print the events on a topic as they pass.

The tail reads as a consumer group of its own (``fnevents-tail-<random>``), new, so it
takes nothing from the groups that do the work; it starts at the end of each topic
and is deleted on exit. How each broker does that is in its ``groups`` module
(:data:`GROUPS`); a bus that lives in another process (the embedded in-memory bus)
or behind a Dapr sidecar (which cannot delete a group) cannot be tailed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import time
import uuid
from types import ModuleType
from typing import TYPE_CHECKING

from events.app.plans import bus_plan, plan_trigger
from events.bindings.structured import to_json
from events.brokers.registry import bus_settings, part_for
from events.bus.plan import EMBEDDED, SIDECAR, BusPlan
from events.cloudevent import CloudEvent
from events.errors import FnEventsError
from events.observability.recent import trimmed_data

if TYPE_CHECKING:
    from events.app.catalog import Catalog
    from events.app.shutdown import Shutdown
    from events.bus.contract import EventBus, Subscription

#: Backend -> the module that starts a group at the end and deletes it.
GROUPS = {
    "pubsub.redis": "events.brokers.redis.groups",
    "pubsub.kafka": "events.brokers.kafka.groups",
    "pubsub.jetstream": "events.brokers.jetstream.groups",
    "pubsub.mqtt3": "events.brokers.mqtt.groups",
}
CANNOT = {
    EMBEDDED: "the embedded in-memory bus lives inside the `fnevents run` process; another "
    "process cannot read it (run the bus on a broker, e.g. --components components/redis.yaml)",
    SIDECAR: "a Dapr sidecar's pub/sub cannot start a group at the end or delete one",
}
EPILOG = """\
The group is new (fnevents-tail-<random>), starts at the end of each topic and is
deleted on exit: on Redis (XGROUP DESTROY), Kafka (DeleteGroups) and NATS JetStream
(the durable consumer is deleted); on MQTT its members use clean sessions, so the
broker keeps nothing once they leave. The embedded in-memory bus and Dapr-sidecar
buses cannot be tailed.

examples:
  fnevents tail -f app/ --components components/redis.yaml --topic default-clock-tick
  fnevents tail -f app/ --components components/kafka.yaml --trigger orders --json | jq .
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    tail = commands.add_parser(
        "tail",
        help="print events on a topic as they pass (a new group, deleted on exit)",
        description="Print each event published on a bus topic (or a Trigger's input "
        "topics) from now on, until Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = tail.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", metavar="TOPIC", help="a bus topic, e.g. default-clock-tick")
    which.add_argument("--trigger", metavar="NAME", help="the input topics of this Trigger")
    tail.add_argument(
        "--bus",
        default="default",
        metavar="NAME",
        help="with --topic: the EventBus (or ClusterEventBus) it is on (default 'default')",
    )
    tail.add_argument("-n", "--namespace", default="default", help="namespace (default 'default')")
    tail.add_argument(
        "--json", action="store_true", help="one event per line, as structured CloudEvent JSON"
    )
    return tail


def run(catalog: Catalog, args: argparse.Namespace, shutdown: Shutdown) -> int:
    try:
        plan, topics = _select(catalog, args)
        return asyncio.run(_tail(plan, topics, args.json, shutdown))
    except FnEventsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _select(catalog: Catalog, args: argparse.Namespace) -> tuple[BusPlan, list[str]]:
    namespace = args.namespace
    if args.trigger:
        item = catalog.get("Trigger", namespace, args.trigger)
        if item is None:
            known = ", ".join(sorted(t.name for t in catalog.of_kind("Trigger"))) or "none"
            raise TailError(
                f"no Trigger '{args.trigger}' in namespace {namespace} (known: {known})"
            )
        topics = list(dict.fromkeys(plan_trigger(item).inputs.values()))
        return _plan(catalog, namespace, item.resource.spec.eventBus), topics
    return _plan(catalog, namespace, args.bus), [args.topic]


def _plan(catalog: Catalog, namespace: str, bus: str) -> BusPlan:
    try:
        plan = bus_plan(catalog, namespace, bus)
    except KeyError:
        raise TailError(
            f"no EventBus or ClusterEventBus '{bus}' for namespace {namespace}"
        ) from None
    if plan.backend in CANNOT:
        raise TailError(f"cannot tail {plan.via}: {CANNOT[plan.backend]}")
    if plan.backend not in GROUPS:
        raise TailError(f"cannot tail {plan.via}: {plan.backend} has no short-lived groups")
    return plan


class TailError(FnEventsError, ValueError):
    """What was asked cannot be tailed; the message says why."""


async def _tail(plan: BusPlan, topics: list[str], as_json: bool, shutdown: Shutdown) -> int:
    stop, _ = shutdown.attach()
    groups: ModuleType = importlib.import_module(GROUPS[plan.backend])
    settings = groups.at_end(bus_settings(plan))
    group = f"fnevents-tail-{uuid.uuid4().hex[:8]}"
    broker, part = part_for(plan.backend)
    bus: EventBus = broker.load(part.target)(settings, pubsub_name=plan.pubsub_name)
    made: list[str] = []
    try:
        await bus.start()
        subscriptions = []
        for topic in topics:
            await groups.prepare(settings, topic, group)
            made.append(topic)
            subscriptions.append(await bus.subscribe(topic, group))
        say(
            f"tailing {', '.join(topics)} on {plan.describe()} as new consumer group {group} "
            "(from the end; deleted on exit); Ctrl-C to stop"
        )
        readers = [asyncio.create_task(_print(s, as_json)) for s in subscriptions]
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, *readers}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiting, *readers):
            task.cancel()
        results = await asyncio.gather(waiting, *readers, return_exceptions=True)
        failures = [r for r in results if isinstance(r, FnEventsError)]
        if failures:
            raise failures[0]
    finally:
        await bus.close()
        await _delete(groups, settings, made, group)
    return 0


async def _print(subscription: Subscription, as_json: bool) -> None:
    async for message in subscription:
        line = (
            to_json(message.event).decode() if as_json else describe(message.topic, message.event)
        )
        try:
            print(line, flush=True)
        except BrokenPipeError:  # `| head`: the reader has gone, so stop quietly
            # as Python's docs advise: point stdout at devnull so the exit flush is quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            await message.nack()
            return
        await message.ack()


async def _delete(groups: ModuleType, settings, topics: list[str], group: str) -> None:
    for topic in topics:
        try:
            await groups.delete(settings, topic, group)
        except FnEventsError as exc:
            say(f"warning: consumer group {group} on {topic} was not deleted: {exc}")
            continue
        say(f"deleted consumer group {group} on {topic}")


def describe(topic: str, event: CloudEvent) -> str:
    """One event as one line for a terminal, its data trimmed."""
    data = trimmed_data(event, 200)
    stamp = time.strftime("%H:%M:%S")
    subject = f" subject={event.subject}" if event.subject else ""
    return (
        f"{stamp} {topic}  id={event.id} type={event.type} source={event.source}{subject}"
        f"  data={data if data is not None else '-'}"
    )


def say(text: str) -> None:
    """Notes go to stderr, so stdout stays events only (for piping)."""
    print(text, file=sys.stderr, flush=True)
