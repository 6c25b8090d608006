"""The delivery loop: try, classify, back off, and give up into a dead letter.

This is the one place that decides whether and when to retry; transports only
report what happened (as :class:`DeliveryError` with ``retriable`` and
``retry_after``). Each attempt is limited to ``policy.timeout``: ``send`` gets
that limit and enforces it itself (the sink client wraps each attempt in one
``asyncio.timeout``; 0 means no limit); a timed-out attempt counts as a
retriable failure. Between attempts it waits the policy's
backoff, or the sink's ``Retry-After`` when that is longer (capped at
:data:`MAX_RETRY_AFTER`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from events.errors import DeliveryError
from events.manifests.extensions import DeliverySpec

#: A Retry-After longer than this is capped, so one sink cannot park a worker for hours.
MAX_RETRY_AFTER = 60.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """How a delivery ended: ``value`` is what the successful attempt returned."""

    delivered: bool
    attempts: int
    error: DeliveryError | None = None
    value: T | None = None


async def deliver(
    send: Callable[[float], Awaitable[T]],
    policy: DeliverySpec,
    on_failed_attempt: Callable[[DeliveryError], None] | None = None,
) -> Outcome[T]:
    """Call ``send(timeout)`` until it succeeds or ``policy`` gives up.

    ``send`` must give up after ``timeout`` seconds, raising :class:`DeliveryError`
    or ``TimeoutError``.
    """
    attempt = 1
    timeout = policy.timeout
    while True:
        try:
            return Outcome(True, attempt, None, await send(timeout))
        except DeliveryError as exc:
            error = exc
        except TimeoutError:
            error = DeliveryError(f"no answer within {timeout:g}s", retriable=True)
        if on_failed_attempt is not None:
            on_failed_attempt(error)
        if not error.retriable or attempt > policy.retry:
            return Outcome(False, attempt, error)
        attempt += 1
        await asyncio.sleep(wait_before(policy, attempt, error))


def wait_before(policy: DeliverySpec, attempt: int, error: DeliveryError) -> float:
    """Seconds to wait before ``attempt``: the backoff, or a longer (capped) Retry-After."""
    delay = policy.delay_before(attempt)
    if error.retry_after is not None:
        delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
    return delay
