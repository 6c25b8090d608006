"""``pubsub.in-memory``: the embedded bus, a real backend with the full contract.

Every group on a topic gets its own FIFO of pending events; the members of a group
take from that FIFO, so work is shared. Events stay outstanding until acked, a
nack puts them back (after the delay), and a member that closes without settling
returns its messages to the group. Publishing waits while any group on the topic
already holds ``max_pending`` unacked events, which is the backpressure that keeps
memory bounded when consumers are slower than producers.

Scope: one process. A group receives events published after it first subscribed;
events published to a topic with no group are not kept (as with Dapr's in-memory
component). Nothing survives a restart: use a broker component for that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import ClassVar

from events.brokers.memory.settings import MemorySettings
from events.bus.contract import EventBus, Message, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed


class _Entry:
    __slots__ = ("attempt", "event", "key")

    def __init__(self, event: CloudEvent, key: str | None) -> None:
        self.event = event
        self.key = key
        self.attempt = 1


class _Group:
    """The shared state of one consumer group on one topic."""

    def __init__(self, max_pending: int) -> None:
        self.ready: deque[_Entry] = deque()
        self.outstanding = 0  # ready + handed out + waiting out a nack delay
        self.max_pending = max_pending
        self.has_ready = asyncio.Event()
        self.has_space = asyncio.Event()
        self.has_space.set()

    def put(self, entry: _Entry) -> None:
        self.ready.append(entry)
        self.has_ready.set()

    def add(self, entry: _Entry) -> None:
        self.outstanding += 1
        if self.outstanding >= self.max_pending:
            self.has_space.clear()
        self.put(entry)

    def done(self) -> None:
        self.outstanding -= 1
        if self.outstanding < self.max_pending:
            self.has_space.set()


class _MemoryMessage(Message):
    __slots__ = ("_entry", "_subscription")

    def __init__(self, topic: str, entry: _Entry, subscription: _MemorySubscription) -> None:
        super().__init__(topic, entry.event, entry.key, entry.attempt)
        self._entry = entry
        self._subscription = subscription

    async def ack(self) -> None:
        if self._subscription.settle(self._entry):
            self._subscription.group.done()

    async def nack(self, delay: float = 0.0) -> None:
        if self._subscription.settle(self._entry):
            self._subscription.redeliver(self._entry, delay)


class _MemorySubscription(Subscription):
    def __init__(self, topic: str, group: _Group) -> None:
        self.topic = topic
        self.group = group
        self._handed_out: set[_Entry] = set()
        self._all_settled = asyncio.Event()
        self._all_settled.set()
        self._closed = False

    async def __anext__(self) -> Message:
        group = self.group
        while not group.ready:
            if self._closed:
                raise StopAsyncIteration
            group.has_ready.clear()
            await group.has_ready.wait()
        if self._closed:
            raise StopAsyncIteration
        entry = group.ready.popleft()
        self._handed_out.add(entry)
        self._all_settled.clear()
        return _MemoryMessage(self.topic, entry, self)

    def settle(self, entry: _Entry) -> bool:
        """Mark ``entry`` settled; False if it already was (or was reclaimed on close)."""
        if entry not in self._handed_out:
            return False
        self._handed_out.remove(entry)
        if not self._handed_out:
            self._all_settled.set()
        return True

    def redeliver(self, entry: _Entry, delay: float) -> None:
        entry.attempt += 1
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self.group.put, entry)
        else:
            self.group.put(entry)

    async def close(self, drain_timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self.group.has_ready.set()  # wake a member blocked in __anext__ so it can stop
        if self._handed_out:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_settled.wait(), drain_timeout)
        for entry in list(self._handed_out):
            self.settle(entry)
            self.redeliver(entry, 0.0)


class MemoryBus(EventBus):
    """The embedded bus. ``max_pending`` bounds unacked events per group."""

    component_type: ClassVar[str] = "pubsub.in-memory"

    def __init__(
        self,
        settings: MemorySettings | None = None,
        pubsub_name: str = "eventbus",
        max_pending: int | None = None,
    ) -> None:
        settings = settings or MemorySettings()
        self._max_pending = max_pending or settings.maxPending
        self._groups: dict[str, dict[str, _Group]] = {}
        self._subscriptions: list[_MemorySubscription] = []
        self._closed = False

    async def publish(self, topic: str, event: CloudEvent, key: str | None = None) -> None:
        if self._closed:
            raise BusClosed("the in-memory bus is closed; cannot publish")
        groups = self._groups.get(topic)
        if not groups:
            return
        for group in groups.values():
            if not group.has_space.is_set():
                await group.has_space.wait()
        for group in groups.values():
            group.add(_Entry(event, key))

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed("the in-memory bus is closed; cannot subscribe")
        groups = self._groups.setdefault(topic, {})
        shared = groups.get(group)
        if shared is None:
            shared = groups[group] = _Group(self._max_pending)
        subscription = _MemorySubscription(topic, shared)
        self._subscriptions.append(subscription)
        return subscription

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))

    def describe(self) -> str:
        return "embedded in-memory bus (single process, not persistent)"
