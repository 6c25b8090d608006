"""``fnevents deadletters list | replay``: the command line around stores and replay."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

import orjson

from events.bus.letters import REPLAY_GROUP
from events.errors import FnEventsError

if TYPE_CHECKING:  # the parser is built on every command: these load only when used
    from events.app.catalog import Catalog
    from events.app.deadletter_topics import Selection
    from events.bus.letters import Letter
    from events.deadletters.replay import TopicReport

EPILOG = f"""\
Letters are read as the consumer group '{REPLAY_GROUP}', which starts at the beginning of
each dead-letter topic; `list` takes nothing, `replay` acks a letter only once its
destination took it. Works on Redis Streams, Kafka and NATS JetStream buses.

examples:
  fnevents deadletters list -f app/ --components components/redis.yaml --trigger orders
  fnevents deadletters list -f app/ --topic default-clock-deadletter --json
  fnevents deadletters replay -f app/ --trigger orders --limit 100
  fnevents deadletters replay -f app/ --trigger orders --to http://localhost:8080/
"""


def add_parser(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """Add ``deadletters list`` and ``replay``; return them, so the caller can add the
    manifest arguments (``-f``, ``--components``) every command shares."""
    parent = commands.add_parser(
        "deadletters",
        help="list or replay dead letters (Redis, Kafka, JetStream buses)",
        description="Look at the events a Trigger, EventSource or Function could not "
        "deliver, and send them again.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parent.add_subparsers(dest="deadletters", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="show the letters not yet replayed, without taking them",
        description="Show each letter not yet replayed: id, type, source, subject, where it "
        "was going, the status, attempts and reason of the failure, and the response excerpt. "
        "Nothing is taken: the letters are still there afterwards.",
    )
    replay = actions.add_parser(
        "replay",
        help="send letters back where they were going; ack each once delivered",
        description="Send each letter, without its error attributes, to the sink URL or "
        "topic it was going to (or --to / --to-topic), retrying under a delivery policy. "
        "A letter is acked only once its destination took it; failures stay on the topic "
        "and are reported. On Kafka and JetStream a failure ends the replay of its topic "
        "(their group keeps a position, not a set of acked letters). Exits 1 if any "
        "letter was not delivered.",
    )
    for sub in (listing, replay):
        _selection_arguments(sub)
        sub.add_argument("--limit", type=_positive, metavar="N", help="at most N letters per topic")
    listing.add_argument("--data", action="store_true", help="show each letter's data too")
    listing.add_argument(
        "--json", action="store_true", help="print one JSON document (data included)"
    )
    _replay_arguments(replay)
    return [listing, replay]


def _selection_arguments(sub: argparse.ArgumentParser) -> None:
    which = sub.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--trigger",
        metavar="NAME",
        help="the Trigger's dead-letter topics: {ns}-{trigger}-deadletter and every "
        "subscriber's deadLetterTopic",
    )
    which.add_argument(
        "--topic",
        metavar="TOPIC",
        help="one dead-letter topic, e.g. an EventSource's or a Function's {ns}-{name}-deadletter",
    )
    sub.add_argument(
        "--bus",
        default="default",
        metavar="NAME",
        help="with --topic: the EventBus (or ClusterEventBus) holding it (default 'default')",
    )
    sub.add_argument("-n", "--namespace", default="default", help="namespace of the Trigger or bus")


def _replay_arguments(replay: argparse.ArgumentParser) -> None:
    where = replay.add_mutually_exclusive_group()
    where.add_argument("--to", metavar="URL", help="send every letter to this sink URL instead")
    where.add_argument(
        "--to-topic", metavar="TOPIC", help="publish every letter to this bus topic instead"
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would be sent where; take nothing"
    )
    replay.add_argument(
        "--retry", type=int, default=3, metavar="N", help="retries per letter (default 3)"
    )
    replay.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="limit per delivery attempt (default 10)",
    )
    replay.add_argument(
        "--wait",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for the broker to hand over the next listed letter (default 15)",
    )
    replay.add_argument("-q", "--quiet", action="store_true", help="no line per letter")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run(catalog: Catalog, args: argparse.Namespace) -> int:
    """Run ``deadletters list`` or ``replay``; the exit status."""
    try:
        selection = _select(catalog, args)
        if args.deadletters == "list":
            return asyncio.run(_list(selection, args))
        return asyncio.run(_replay(selection, args))
    except FnEventsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: letters not yet acked stay on the topic", file=sys.stderr)
        return 130


def _select(catalog: Catalog, args: argparse.Namespace) -> Selection:
    from events.app.deadletter_topics import named_topic, trigger_topics

    if args.trigger:
        return trigger_topics(catalog, args.namespace, args.trigger)
    return named_topic(catalog, args.namespace, args.bus, args.topic)


async def _list(selection: Selection, args: argparse.Namespace) -> int:
    from events.deadletters.stores import open_store

    store = open_store(selection.plan)
    try:
        found = {topic: await store.browse(topic, args.limit) for topic in selection.topics}
    finally:
        await store.close()
    if args.json:
        letters = [letter.summary(with_data=True) for each in found.values() for letter in each]
        counts = [{"topic": topic, "count": len(each)} for topic, each in found.items()]
        document = {"bus": selection.plan.describe(), "topics": counts, "letters": letters}
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return 0
    for topic, letters in found.items():
        print(f"{topic} ({selection.owner}, {selection.plan.describe()}): {len(letters)} letter(s)")
        for letter in letters:
            print("\n".join(describe(letter, args.data)))
    return 0


def describe(letter: Letter, with_data: bool = False) -> list[str]:
    """A letter as a few indented lines for a terminal."""
    from events.bus.letters import data_fields

    event = letter.event
    held = "  (taken by a replay, not acked)" if letter.pending else ""
    lines = [
        f"- {letter.position}  id {event.id}{held}",
        f"    type {event.type}  source {event.source}  subject {event.subject or '-'}",
        f"    to {letter.destination or '(not recorded)'}  status {letter.status or '-'}  "
        f"attempts {letter.attempts if letter.attempts is not None else '-'}",
        f"    reason {letter.reason or '-'}",
    ]
    if letter.response:
        lines.append(f"    response {letter.response!r}")
    if with_data:
        fields = data_fields(event)
        data = fields.get("data", fields.get("data_base64"))
        shown = data if isinstance(data, str) else orjson.dumps(data).decode()
        lines.append(f"    data ({fields['datacontenttype'] or '-'}) {shown}")
    return lines


async def _replay(selection: Selection, args: argparse.Namespace) -> int:
    from events.bus.letters import Destination
    from events.deadletters.replay import Replayer, ReplayOptions
    from events.deadletters.stores import open_store
    from events.manifests.extensions import DeliverySpec

    to = Destination(url=args.to) if args.to else None
    if args.to_topic:
        to = Destination(topic=args.to_topic)
    options = ReplayOptions(
        to=to,
        limit=args.limit,
        dry_run=args.dry_run,
        delivery=DeliverySpec(retry=args.retry, timeout=args.timeout),
        wait=args.wait,
    )
    store = open_store(selection.plan)
    replayer = Replayer(store, options, _progress(args.quiet))
    reports: list[TopicReport] = []
    try:
        for topic in selection.topics:
            reports.append(await replayer.replay(topic))
    finally:
        await store.close()
    for report in reports:
        print(summary(report, args.dry_run))
    return 0 if all(r.ok for r in reports) else 1


def _progress(quiet: bool):
    def show(what: str, letter: Letter, detail: str) -> None:
        if not quiet or what == "failed":
            print(f"{what:<12} {letter.event.id} -> {detail}", flush=True)

    return show


def summary(report: TopicReport, dry_run: bool = False) -> str:
    """One line per topic: how many were replayed, failed, missing, and why it stopped."""
    if dry_run:
        return f"{report.topic}: {report.listed} letter(s) would be replayed (dry run)"
    line = (
        f"{report.topic}: replayed {report.replayed} of {report.listed} letter(s), "
        f"{len(report.failed)} failed"
    )
    if report.failed:
        line += " (still on the topic)"
    if report.missing:
        line += f"; {report.missing} listed but not handed over by the broker in time"
    if report.stopped:
        line += f"; stopped: {report.stopped}"
    return line
