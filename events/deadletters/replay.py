"""``deadletters replay``: send letters back where they were going, acking each only once
its destination took it.

Per topic: list the letters REPLAY_GROUP has not acked (the snapshot), join the group,
and take messages until every letter of the snapshot has been seen. Each is sent,
without its error attributes, to the recorded destination (or ``--to``/``--to-topic``)
under a delivery policy with retries. Delivered: ack. Not delivered: left unacked and
given back to the group when replay ends, so it is still listed and the next replay
tries it again. A message that is not in the snapshot (written meanwhile, or past
``--limit``) is given back untouched. On a positional store (Kafka, JetStream) the
first failure, or the first message past the snapshot, ends the topic's replay: an ack
after it would not stick, and the letters after it would be delivered twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from events.bus.contract import EventBus, Message, Subscription
from events.bus.letters import REPLAY_GROUP, Destination, Letter, LetterStore
from events.cloudevent import CloudEvent
from events.delivery import policy
from events.delivery.sinks import SinkClient
from events.errors import BusError, DeliveryError
from events.manifests.extensions import DeliverySpec


@dataclass(frozen=True)
class ReplayOptions:
    to: Destination | None = None  # overrides every letter's own destination
    limit: int | None = None  # per topic
    dry_run: bool = False
    delivery: DeliverySpec = field(default_factory=DeliverySpec)
    wait: float = 15.0  # longest wait for the next letter of the snapshot


@dataclass
class TopicReport:
    topic: str
    listed: int = 0
    replayed: int = 0
    failed: list[tuple[Letter, str]] = field(default_factory=list)
    missing: int = 0  # listed, but never handed to us within ``wait``
    stopped: str | None = None  # why a positional replay ended before the snapshot did

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing and self.stopped is None


Progress = Callable[[str, Letter, str], None]  # (what happened, letter, detail)


class Replayer:
    def __init__(self, store: LetterStore, options: ReplayOptions, progress: Progress) -> None:
        self.store = store
        self.options = options
        self.progress = progress

    async def replay(self, topic: str) -> TopicReport:
        letters = await self.store.browse(topic, self.options.limit)
        report = TopicReport(topic, listed=len(letters))
        if not letters:
            return report
        if self.options.dry_run:
            for letter in letters:
                target = self._target(letter)
                shown = str(target) if target else "(no destination: give --to or --to-topic)"
                self.progress("would replay", letter, shown)
            return report
        bus = self.store.replay_bus()
        sinks = SinkClient()
        try:
            await bus.start()
            subscription = await bus.subscribe(topic, REPLAY_GROUP)
            held: list[Message] = []
            try:
                await self._take(subscription, bus, sinks, letters, report, held)
            finally:
                await self.store.release(held)
                await subscription.close(drain_timeout=0)
        finally:
            await sinks.close()
            await bus.close()
        return report

    async def _take(
        self,
        subscription: Subscription,
        bus: EventBus,
        sinks: SinkClient,
        letters: list[Letter],
        report: TopicReport,
        held: list[Message],
    ) -> None:
        expected = Counter(letter.event.id for letter in letters)
        remaining = len(letters)
        delivered: set[str] = set()  # ids this replay has delivered (and acked)
        while remaining:
            try:
                message = await asyncio.wait_for(anext(subscription), self.options.wait)
            except (TimeoutError, StopAsyncIteration):
                report.missing = remaining
                return
            event_id = message.event.id
            if expected[event_id] <= 0:
                if event_id in delivered:  # handed out again (its ackWait or
                    await message.ack()  # processingTimeout passed): done already
                    continue
                held.append(message)  # not in the snapshot, or failed here: leave it be
                if self.store.positional and not _failed(report, event_id):
                    report.stopped = f"{event_id} is past the letters listed"
                    return
                continue
            expected[event_id] -= 1
            remaining -= 1
            if not await self._replay_one(message, bus, sinks, report, delivered):
                held.append(message)
                if self.store.positional:
                    report.stopped = f"{event_id} failed; later letters wait behind it"
                    return

    async def _replay_one(
        self,
        message: Message,
        bus: EventBus,
        sinks: SinkClient,
        report: TopicReport,
        delivered: set[str],
    ) -> bool:
        """Send one letter; ack it once delivered. Whether it was."""
        letter = Letter(report.topic, "", message.event)
        error = await self._send(letter, bus, sinks)
        if error is not None:
            report.failed.append((letter, error))
            self.progress("failed", letter, error)
            return False
        await message.ack()
        delivered.add(letter.event.id)
        report.replayed += 1
        self.progress("replayed", letter, str(self._target(letter)))
        return True

    def _target(self, letter: Letter) -> Destination | None:
        return self.options.to or letter.destination

    async def _send(self, letter: Letter, bus: EventBus, sinks: SinkClient) -> str | None:
        """None once the destination took the event, else why not."""
        target = self._target(letter)
        if target is None:
            return (
                "the letter records no destination (a source's rejected input has none); "
                "give one with --to URL or --to-topic TOPIC"
            )
        event = letter.stripped()
        spec = self.options.delivery
        if target.url:
            url = target.url
            outcome = await policy.deliver(
                lambda seconds: sinks.post(url, event, spec.structured, seconds), spec
            )
        else:
            assert target.topic is not None
            topic = target.topic
            outcome = await policy.deliver(
                lambda seconds: _publish(bus, topic, event, seconds), spec
            )
        if outcome.delivered:
            return None
        assert outcome.error is not None
        return f"{target}: after {outcome.attempts} attempt(s): {outcome.error.reason}"


def _failed(report: TopicReport, event_id: str) -> bool:
    return any(letter.event.id == event_id for letter, _ in report.failed)


async def _publish(bus: EventBus, topic: str, event: CloudEvent, seconds: float) -> None:
    key = event.extensions.get("partitionkey", event.subject)
    try:
        async with asyncio.timeout(seconds):
            await bus.publish(topic, event, key=None if key is None else str(key))
    except BusError as exc:
        raise DeliveryError(str(exc), retriable=exc.retriable) from exc
