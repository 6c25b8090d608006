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

A group and its members are in :mod:`events.brokers.memory.member`, a delivery in
:mod:`events.brokers.memory.message`.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from events.brokers.memory.member import Group, MemoryMember
from events.brokers.memory.message import Entry
from events.brokers.memory.settings import MemorySettings
from events.bus.contract import EventBus, Subscription
from events.cloudevent import CloudEvent
from events.errors import BusClosed


class MemoryBus(EventBus):
    """The embedded bus. ``max_pending`` bounds unacked events per group."""

    component_type: ClassVar[str] = "pubsub.in-memory"
    in_process: ClassVar[bool] = True

    def __init__(
        self,
        settings: MemorySettings | None = None,
        pubsub_name: str = "eventbus",
        max_pending: int | None = None,
    ) -> None:
        settings = settings or MemorySettings()
        self._max_pending = max_pending or settings.maxPending
        self._groups: dict[str, dict[str, Group]] = {}
        self._subscriptions: list[MemoryMember] = []
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
            group.add(Entry(event, key))

    async def subscribe(self, topic: str, group: str) -> Subscription:
        if self._closed:
            raise BusClosed("the in-memory bus is closed; cannot subscribe")
        groups = self._groups.setdefault(topic, {})
        shared = groups.get(group)
        if shared is None:
            shared = groups[group] = Group(self._max_pending)
        member = MemoryMember(topic, shared)
        self._subscriptions.append(member)
        return member

    async def backlog(self, topic: str, group: str) -> int | None:
        """The group's events queued, handed out or waiting out a nack delay; None for a
        group that never subscribed."""
        shared = self._groups.get(topic, {}).get(group)
        return None if shared is None else shared.outstanding

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self._subscriptions))

    def describe(self) -> str:
        return "embedded in-memory bus (single process, not persistent)"
