"""What many tests do the same way, defined once: read a bus subscription, wait for a
condition to hold, read a Prometheus counter.

Every wait takes its timeout from the caller: each test keeps the one it was written with.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from events.bus.contract import Message, Subscription
from events.cloudevent import CloudEvent
from events.observability.metrics import Metrics

#: How long a test waits for one message when it names no other timeout.
RECEIVE_TIMEOUT = 5.0
#: How often a condition is polled.
POLL_INTERVAL = 0.02

Condition = Callable[[], bool | Awaitable[bool]]


async def receive(subscription: Subscription, timeout: float = RECEIVE_TIMEOUT) -> Message:
    """The next message on ``subscription``, not settled; TimeoutError after ``timeout``."""
    return await asyncio.wait_for(anext(subscription), timeout)


async def receive_all(
    subscription: Subscription, count: int, ack: bool = True, timeout: float = RECEIVE_TIMEOUT
) -> list[Message]:
    """The next ``count`` messages, each within ``timeout``; acked unless ``ack`` is False."""
    messages = []
    for _ in range(count):
        message = await receive(subscription, timeout)
        if ack:
            await message.ack()
        messages.append(message)
    return messages


async def received(subscription: Subscription, timeout: float = RECEIVE_TIMEOUT) -> CloudEvent:
    """The event of the next message on ``subscription``, acked."""
    message = await receive(subscription, timeout)
    await message.ack()
    return message.event


async def nothing_within(subscription: Subscription, seconds: float) -> bool:
    """True if no message arrives on ``subscription`` within ``seconds``."""
    try:
        await asyncio.wait_for(anext(subscription), seconds)
    except TimeoutError:
        return True
    return False


async def until(
    condition: Condition, what: str, timeout: float, interval: float = POLL_INTERVAL
) -> None:
    """Poll ``condition`` (a real answer: a broker's, a counter's; sync or async) until it
    holds; an AssertionError naming ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not await _holds(condition):
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g}s waiting until {what}") from None


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float,
    detail: Callable[[], str] = lambda: "",
    interval: float = POLL_INTERVAL,
) -> None:
    """:func:`until` for code without an event loop (a test driving processes); on timeout
    the AssertionError ends with ``detail()`` (e.g. the process's output)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting until {what}\n{detail()}")
        time.sleep(interval)


def counter(metrics: Metrics, name: str, *labels: str) -> float:
    """The value of the counter ``metrics.<name>`` for its label values ``labels`` (in the
    order the counter declares them), read from the registry as a scrape would; 0 for
    labels never counted."""
    family = getattr(metrics, name).describe()[0].name
    label_names = _label_names(metrics, family)
    if label_names is None:  # nothing counted under any labels yet
        return 0.0
    sample = f"{family}_total"
    value = metrics.registry.get_sample_value(sample, dict(zip(label_names, labels, strict=True)))
    return 0.0 if value is None else value


def _label_names(metrics: Metrics, family: str) -> list[str] | None:
    """The label names of ``family``, from any of its samples; None while it has none."""
    for collected in metrics.registry.collect():
        if collected.name == family and collected.samples:
            return list(collected.samples[0].labels)
    return None


async def _holds(condition: Condition) -> bool:
    result = condition()
    return await result if inspect.isawaitable(result) else result
