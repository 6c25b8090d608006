"""The trigger loop: read inputs as the trigger's own consumer group, evaluate
conditions, hand each matching subscriber the event, then ack.

The bus message is acked only when every matching subscriber has either taken
the event or had it dead-lettered; if the bus refuses a publish, the message is
nacked and comes back (so a subscriber that already succeeded may see it again:
at least once, never lost). Messages are handled concurrently up to
``max_in_flight``; reading stops while that many are open, which is the
backpressure to the bus.

A message the bus hands over more than ``max_deliveries`` times (a poison
message, or one the bus could not decode) goes to the trigger's dead-letter
topic instead of cycling forever.

With ``order_by`` set, events that share a key (the value of that attribute)
are delivered one after another in the order the bus handed them over, while
events with different keys (or none) proceed in parallel; the key does not cap
parallelism the way a partition count does. Order holds within one trigger
process as long as the bus hands the key's events over in order (see the bus
capabilities in the README); a message that is nacked and redelivered may land
after its successors.

An input ``filter`` drops events before they count for conditions; a
subscriber's ``filter`` is checked after its condition holds. A dropped event is
acked (it was handled: nothing wanted it) and counted. The runner binds each filter
to this trigger when it is built, so a filter's evaluation errors (no match) are
counted and logged under the trigger's name and the filter's place.

Condition state (when each input last had an event) is a ``triggers.state``
object. By default it lives in this process (it starts empty on restart and is
not shared between replicas, as in OpenFunction) and is read without an await.
With a condition store (``events.brokers.redis.state``) every replica shares it and it
survives restarts; when the store cannot answer, the event is not evaluated: the
message is nacked and comes back with backoff, and the outage is reported once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from events.bus.consumer import Consumer
from events.bus.contract import Message
from events.bus.poison import DEFAULT_MAX_ATTEMPTS
from events.bus.resilient import Outage
from events.bus.stall import StallWatch
from events.cloudevent import CloudEvent
from events.errors import StateStoreError
from events.observability import tracing
from events.observability.recent import FILTERED
from triggers.filters import EventFilter
from triggers.state import ConditionState, LocalState
from triggers.subscriber import DeliveryContext, Subscriber


class TriggerRunner:
    def __init__(
        self,
        name: str,
        inputs: Mapping[str, str],
        subscribers: Sequence[Subscriber],
        window: float,
        group: str,
        ctx: DeliveryContext,
        max_in_flight: int = 64,
        max_deliveries: int = DEFAULT_MAX_ATTEMPTS,
        dead_letter_topic: str | None = None,
        input_filters: Mapping[str, EventFilter] | None = None,
        order_by: str | None = None,
        state: ConditionState | None = None,
        watch: StallWatch | None = None,
    ) -> None:
        self.name = name  # "namespace/name"
        self._watch = watch  # reports an input that stalls (events.bus.stall)
        self.inputs = dict(inputs)  # input name -> topic
        self.subscribers = list(subscribers)
        for subscriber in self.subscribers:
            subscriber.bind(ctx.metrics)
        self.window = window
        self.group = group
        self.ctx = ctx
        self.max_deliveries = max_deliveries
        self.dead_letter_topic = dead_letter_topic or f"{group}-deadletter"
        self._slots = asyncio.Semaphore(max_in_flight)
        self.state = state or LocalState(window)
        #: the in-process state, read without an await; None with a condition store
        self._local = self.state if isinstance(self.state, LocalState) else None
        self._outage = Outage(
            f"condition store {self.state.describe()}",
            self._warn,
            lambda text: ctx.console.say(f"trigger {name}: {text}"),
        )
        self._consumers: list[tuple[str, Consumer]] = []
        self.input_filters = dict(input_filters or {})
        #: each filter's place, and the bound counter of the events it drops
        self._dropped: dict[str | int, Any] = {}
        places = [(n, f"inputs.{n}", f) for n, f in self.input_filters.items()]
        places += [(s.index, f"subscribers[{s.index}]", s.filter) for s in self.subscribers]
        for key, where, event_filter in places:
            if event_filter is not None:
                event_filter.bind(name, where, ctx.metrics, self._warn)
                self._dropped[key] = ctx.metrics.filtered.labels(name, where)
        self.order_by = order_by
        self._where = f"trigger:{name}"  # its place in the web console's recent events
        self._filters = any(s.filter is not None for s in self.subscribers)
        #: the subscribers whose condition holds, when that never changes: one input and
        #: the in-process state it owns (its only input is fresh whenever it has an
        #: event), so no freshness to compute or conditions to evaluate per event.
        #: Differential test: tests/fastpaths/test_p2b_select.py
        self._always: list[Subscriber] | None = None
        if state is None and len(self.inputs) == 1 and window >= 0:
            fresh = dict.fromkeys(self.inputs, True)
            self._always = [s for s in self.subscribers if s.condition.evaluate(fresh)]
        self._tails: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        """Subscribe to every input (the groups exist from here on) and start reading."""
        for input_name, topic in self.inputs.items():
            handler: Any = partial(self._handle, input_name)
            if tracing.enabled:  # a CONSUMER span per delivery; decided here, not per event
                role = f"trigger/{self.name}"
                handler = tracing.consumer(handler, self.ctx.bus, topic, self.group, role)
            consumer = Consumer(
                self.ctx.bus,
                topic,
                self.group,
                handler,
                slots=self._slots,
                report=self._warn,
                max_deliveries=self.max_deliveries,
                dead_letter_topic=self.dead_letter_topic,
                watch=self._watch,
                label=f"trigger {self.name} input {input_name}",
                # a span is kept in a context variable across waits: then no inline start
                inline=not tracing.enabled and self._waits_on_nothing_outside(),
            )
            metrics = self.ctx.metrics
            counter = metrics.tally(metrics.trigger_events.labels(self.name, input_name))
            await consumer.start(on_message=counter.inc)
            self._consumers.append((input_name, consumer))

    def _waits_on_nothing_outside(self) -> bool:
        """Whether handling an event here waits on nothing outside this process: an
        in-process bus, no sink, condition state kept locally. Only such handling may the
        reader run itself (``Consumer``'s inline start): a sink's or a broker client's
        timeout would hold up, or cancel, the reader."""
        sinks = any(s.sink_url for s in self.subscribers)
        return self.ctx.bus.in_process and self._local is not None and not sinks

    def _warn(self, text: str) -> None:
        self.ctx.console.warn(f"trigger {self.name}: {text}")

    async def _handle(self, input_name: str, message: Message) -> None:
        """Deliver to every matching subscriber; raises (so the message is nacked) only if
        the bus refused a publish."""
        received = time.monotonic()
        event = message.event
        recent = self.ctx.recent
        if recent is not None:
            recent.seen(self._where, event, input_name)
        input_filter = self.input_filters.get(input_name) if self.input_filters else None
        if input_filter is not None and not input_filter.matches(event):
            self._dropped[input_name].inc()
            if recent is not None:
                recent.outcome(self._where, event.id, f"inputs.{input_name}", FILTERED)
            return
        local, matched = self._local, self._always
        if matched is not None and local is not None:
            # mark_now without its answer (the only input, fresh): the same state after
            local.last_seen[input_name] = received
            if self._filters:
                matched = self._filtered(matched, event)
        elif local is not None:
            matched = self._select(local.mark_now(input_name, received), event)
        else:
            matched = self._select(await self._mark_stored(input_name, received), event)
        key = None if self.order_by is None else self._order_key(event)
        if key is None:
            if len(matched) == 1:  # the common case, without a call more
                await matched[0].deliver(event, self.ctx, received)
            else:
                await self._deliver(matched, event, received)
            return
        previous = self._tails.get(key)
        turn = asyncio.get_running_loop().create_future()
        self._tails[key] = turn
        try:
            if previous is not None:
                await previous
            await self._deliver(matched, event, received)
        finally:
            turn.set_result(None)
            if self._tails.get(key) is turn:
                del self._tails[key]

    def _order_key(self, event: CloudEvent) -> str | None:
        if self.order_by is None:
            return None
        value = event.get(self.order_by)
        return None if value is None else str(value)

    async def _deliver(self, matched: list[Subscriber], event: CloudEvent, received: float):
        if len(matched) == 1:  # the common case, without gather's extra task and loop hop
            await matched[0].deliver(event, self.ctx, received)
        elif matched:
            results = await asyncio.gather(
                *(s.deliver(event, self.ctx, received) for s in matched),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]

    def matching(
        self, input_name: str, now: float, event: CloudEvent | None = None
    ) -> list[Subscriber]:
        """Mark ``input_name`` fresh at ``now`` in the in-process state and return the
        subscribers whose condition holds and whose filter (if any) passes ``event``."""
        if self._local is None:
            raise TypeError("matching() reads the in-process state; this trigger has a store")
        if input_name not in self.inputs:  # the state now knows more than the one input
            self._always = None
        return self._select(self._local.mark_now(input_name, now), event)

    async def _mark_stored(self, input_name: str, now: float) -> dict[str, bool]:
        """The store's answer; on failure, report the outage once and raise (so a nack)."""
        try:
            fresh = await self.state.mark(input_name, now)
        except StateStoreError as exc:
            self._outage.failed(str(exc))
            exc.reported = True
            raise
        self._outage.recovered()
        return fresh

    def _select(self, fresh: dict[str, bool], event: CloudEvent | None) -> list[Subscriber]:
        chosen = [s for s in self.subscribers if s.condition.evaluate(fresh)]
        if event is None:
            return chosen
        return self._filtered(chosen, event)

    def _filtered(self, chosen: list[Subscriber], event: CloudEvent) -> list[Subscriber]:
        return [s for s in chosen if s.filter is None or self._passes(s, event)]

    def _passes(self, subscriber: Subscriber, event: CloudEvent) -> bool:
        assert subscriber.filter is not None
        if subscriber.filter.matches(event):
            return True
        self._dropped[subscriber.index].inc()
        if self.ctx.recent is not None:
            self.ctx.recent.outcome(self._where, event.id, subscriber.label, FILTERED)
        return False

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop reading; let open deliveries finish (up to the timeout); return the rest."""
        await asyncio.gather(*(c.stop(drain_timeout) for _, c in self._consumers))
        await self.state.close()
