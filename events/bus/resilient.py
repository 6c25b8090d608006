"""Reconnect, once, in the core: backends report a lost broker; this retries.

A backend raises :class:`BusError` with ``retriable=True`` from ``subscribe``,
``__anext__`` or ``publish`` when its broker is unreachable. The helpers here
say so plainly (once per outage, not once per attempt), back off, and try again:

- :class:`ResilientSubscription` re-subscribes the same topic and group, so a
  consumer survives a broker restart; messages it held unacked come back
  through the broker's own redelivery.
- :func:`publish_until_accepted` retries a publish until the broker holds the
  event, which is what lets a source wait out an outage without losing events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from events.bus.contract import EventBus, Message, Subscription
from events.bus.retry import backoff_delays
from events.cloudevent import CloudEvent
from events.errors import BusError

Report = Callable[[str], None]


class ResilientSubscription(Subscription):
    def __init__(self, bus: EventBus, topic: str, group: str, report: Report) -> None:
        self._bus, self._topic, self._group, self._report = bus, topic, group, report
        self._current: Subscription | None = None
        self._closed = False

    async def open(self) -> ResilientSubscription:
        self._current = await self._retry(lambda: self._bus.subscribe(self._topic, self._group))
        return self

    async def __anext__(self) -> Message:
        while True:
            if self._closed or self._current is None:
                raise StopAsyncIteration
            try:
                return await self._current.__anext__()
            except BusError as exc:
                if not exc.retriable or self._closed:
                    raise
                self._report(f"lost the bus while reading {self._topic}: {exc}; reconnecting")
                await self._current.close(drain_timeout=0)
                self._current = await self._retry(
                    lambda: self._bus.subscribe(self._topic, self._group)
                )
                self._report(f"reading {self._topic} again")

    async def _retry(self, attempt):
        delays = backoff_delays()
        reported = False
        while True:
            try:
                return await attempt()
            except BusError as exc:
                if not exc.retriable:
                    raise
                delay = next(delays)
                if not reported:
                    self._report(f"cannot subscribe to {self._topic}: {exc}; retrying with backoff")
                    reported = True
                await asyncio.sleep(delay)

    async def close(self, drain_timeout: float = 5.0) -> None:
        self._closed = True
        if self._current is not None:
            await self._current.close(drain_timeout)


async def publish_until_accepted(
    bus: EventBus, topic: str, event: CloudEvent, key: str | None, report: Report
) -> None:
    """Publish, waiting out a broker outage with backoff; returns once the bus holds it."""
    delays = backoff_delays()
    reported = False
    while True:
        try:
            await bus.publish(topic, event, key=key)
        except BusError as exc:
            if not exc.retriable:
                raise
            if not reported:
                report(f"cannot publish to {topic}: {exc}; holding events and retrying")
                reported = True
            await asyncio.sleep(next(delays))
        else:
            if reported:
                report(f"publishing to {topic} again")
            return
