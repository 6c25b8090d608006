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

Condition state (when each input last had an event) lives in this process: it
starts empty on restart and is not shared between replicas. That matches
OpenFunction and is documented; the events themselves are never lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from events.bus.contract import Message, Subscription
from events.bus.poison import DEFAULT_MAX_ATTEMPTS, bounded
from events.bus.resilient import ResilientSubscription
from triggers.subscriber import DeliveryContext, Subscriber

NACK_DELAY = 1.0


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
    ) -> None:
        self.name = name  # "namespace/name"
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
        self._last_seen: dict[str, float] = {}
        self._subscriptions: list[Subscription] = []
        self._readers: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe to every input (the groups exist from here on) and start reading."""
        for input_name, topic in self.inputs.items():
            connection = ResilientSubscription(self.ctx.bus, topic, self.group, self._warn)
            subscription = bounded(
                await connection.open(),
                self.ctx.bus,
                self.max_deliveries,
                self.dead_letter_topic,
            )
            self._subscriptions.append(subscription)
            self._readers.append(
                asyncio.create_task(
                    self._read(input_name, subscription), name=f"trigger {self.name} {input_name}"
                )
            )

    def _warn(self, text: str) -> None:
        self.ctx.console.warn(f"trigger {self.name}: {text}")

    async def _read(self, input_name: str, subscription: Subscription) -> None:
        try:
            await self._consume(input_name, subscription)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - say why the input stopped, don't die silently
            self.ctx.console.error(
                f"trigger {self.name}: stopped reading input {input_name}: {exc}"
            )

    async def _consume(self, input_name: str, subscription: Subscription) -> None:
        counter = self.ctx.metrics.trigger_events.labels(self.name, input_name)
        async for message in subscription:
            counter.inc()
            await self._slots.acquire()
            task = asyncio.create_task(self._handle(input_name, message))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, input_name: str, message: Message) -> None:
        try:
            received = time.monotonic()
            matched = self.matching(input_name, received)
            if len(matched) == 1:  # the common case, without gather's extra task and loop hop
                await matched[0].deliver(message.event, self.ctx, received)
            elif matched:
                await self._deliver_all(matched, message, received)
        except Exception as exc:  # noqa: BLE001 - any failure must put the event back, not lose it
            self.ctx.console.error(
                f"trigger {self.name}: could not finish event {message.event.id} ({exc}); "
                f"it will be redelivered"
            )
            await message.nack(NACK_DELAY)
        else:
            await message.ack()
        finally:
            self._slots.release()

    async def _deliver_all(self, matched: list[Subscriber], message: Message, received: float):
        results = await asyncio.gather(
            *(s.deliver(message.event, self.ctx, received) for s in matched),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    def matching(self, input_name: str, now: float) -> list[Subscriber]:
        """Mark ``input_name`` fresh at ``now`` and return the subscribers whose condition holds."""
        self._last_seen[input_name] = now
        horizon = now - self.window
        fresh = {name: seen >= horizon for name, seen in self._last_seen.items()}
        return [s for s in self.subscribers if s.condition.evaluate(fresh)]

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop reading; let open deliveries finish (up to the timeout); return the rest."""
        await asyncio.gather(*(s.close(drain_timeout) for s in self._subscriptions))
        for reader in self._readers:
            reader.cancel()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._readers, *self._handlers, return_exceptions=True)
