"""One member of a group on the in-memory bus, and the :class:`Group` its members share.

Every group on a topic has its own FIFO of ready events; the members of the group
take from it, so work is shared. An event stays outstanding until acked: a nack
puts it back (after the delay), and a member that closes without settling gives
its events back to the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from events.brokers.memory.message import Entry, MemoryMessage
from events.bus.contract import Message, Subscription


class Group:
    """The shared state of one consumer group on one topic."""

    def __init__(self, max_pending: int) -> None:
        self.ready: deque[Entry] = deque()
        self.outstanding = 0  # ready + handed out + waiting out a nack delay
        self.max_pending = max_pending
        self.has_ready = asyncio.Event()
        self.has_space = asyncio.Event()
        self.has_space.set()

    def put(self, entry: Entry) -> None:
        self.ready.append(entry)
        self.has_ready.set()

    def add(self, entry: Entry) -> None:
        self.outstanding += 1
        if self.outstanding >= self.max_pending:
            self.has_space.clear()
        self.put(entry)

    def done(self) -> None:
        self.outstanding -= 1
        if self.outstanding < self.max_pending:
            self.has_space.set()


class MemoryMember(Subscription):
    def __init__(self, topic: str, group: Group) -> None:
        self.topic = topic
        self.group = group
        self._handed_out: set[Entry] = set()
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
        return MemoryMessage(self.topic, entry, self)

    def settle(self, entry: Entry) -> bool:
        """Mark ``entry`` settled; False if it already was (or was reclaimed on close)."""
        if entry not in self._handed_out:
            return False
        self._handed_out.remove(entry)
        if not self._handed_out:
            self._all_settled.set()
        return True

    def redeliver(self, entry: Entry, delay: float) -> None:
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
