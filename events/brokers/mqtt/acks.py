"""Handling received messages a few at a time while acking them strictly in arrival order.

MQTT 3.1.1 (4.6) and 5 (4.6) say a client MUST send PUBACKs in the order the
PUBLISH packets arrived, and the source must PUBACK a message only once its
event is safe. :class:`InOrderAcks` does both with a bounded window:

* ``put`` (called from paho's callback, never blocks) appends the message to
  ``_unacked``, which is in arrival order, and queues it for the workers;
* ``workers`` tasks take messages in that order and run ``handle`` on them, so
  at most ``workers`` handles run at once, started in arrival order;
* when a handle returns, its message is marked done, and every done message at
  the head of ``_unacked`` is acked, in order. So a message is acked only after
  its own handle returned *and* every earlier message was acked: the acks are a
  prefix of the arrivals, in order, whatever order the handles finish in.
* if a handle raises, nothing is acked any more (not even messages after it
  whose handles succeed) and ``run`` raises that error; the caller drops the
  connection, and the broker sends every unacked message again to the same
  session. The messages after the failed one that were already handled arrive
  twice: at least once, never lost.

Messages that need no ack (QoS 0) take the same path, so they too are handled
in order; a backlog of them beyond ``max_unacked`` is dropped (counted in
``dropped``), since the broker does not bound what it sends at QoS 0 and
QoS 0 is at most once by the sender's choice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: QoS 0 messages waiting to be handled beyond which new ones are dropped.
MAX_UNACKED_QOS0 = 10_000


class _Entry(Generic[T]):
    __slots__ = ("done", "item")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False


class InOrderAcks(Generic[T]):
    """Use from one event loop; ``run`` once, until it raises or is cancelled."""

    def __init__(
        self,
        handle: Callable[[T], Awaitable[None]],
        ack: Callable[[T], None],
        workers: int,
        needs_ack: Callable[[T], bool] = lambda _: True,
    ) -> None:
        self._handle, self._ack, self._needs_ack = handle, ack, needs_ack
        self._workers = workers
        self._unacked: deque[_Entry[T]] = deque()
        self._queue: asyncio.Queue[_Entry[T]] = asyncio.Queue()
        self._failed = asyncio.Event()
        self._error: Exception | None = None
        self.dropped = 0

    def put(self, item: T) -> None:
        """A message arrived (in order). Never raises, never blocks."""
        if self._error is not None:
            return  # its ack could not be sent: the broker sends it again
        if not self._needs_ack(item) and self._queue.qsize() >= MAX_UNACKED_QOS0:
            self.dropped += 1
            return
        entry = _Entry(item)
        self._unacked.append(entry)
        self._queue.put_nowait(entry)

    def fail(self, error: Exception) -> None:
        """Stop acking and make ``run`` raise ``error`` (the first one given wins)."""
        if self._error is None:
            self._error = error
            self._failed.set()

    @property
    def unacked(self) -> int:
        """Messages received and not yet acked (handled or not)."""
        return len(self._unacked)

    async def run(self) -> None:
        """Handle messages until a handle or ``fail`` reports an error; raise it."""
        tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        try:
            await self._failed.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert self._error is not None
        raise self._error

    async def _work(self) -> None:
        queue, unacked = self._queue, self._unacked
        while True:
            entry = await queue.get()
            try:
                await self._handle(entry.item)
            except Exception as exc:  # noqa: BLE001 - run() raises it; never swallowed
                self.fail(exc)
                return
            entry.done = True
            if self._error is not None:
                return
            while unacked and unacked[0].done:
                item = unacked.popleft().item
                if self._needs_ack(item):
                    self._ack(item)
