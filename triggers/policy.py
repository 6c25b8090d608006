"""The delivery loop: try, classify, back off, and give up into a dead letter.

This is the one place that decides whether and when to retry; transports only
report what happened (as :class:`DeliveryError` with ``retriable`` and
``retry_after``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from events.errors import DeliveryError
from events.manifests.extensions import DeliverySpec

#: A Retry-After longer than this is capped, so one sink cannot park a worker for hours.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    error: DeliveryError | None = None


async def deliver(
    send: Callable[[], Awaitable[None]],
    policy: DeliverySpec,
    on_failed_attempt: Callable[[DeliveryError], None] | None = None,
) -> Outcome:
    """Call ``send`` until it succeeds or ``policy`` gives up."""
    attempt = 1
    while True:
        try:
            async with asyncio.timeout(policy.timeout):
                await send()
            return Outcome(True, attempt)
        except DeliveryError as exc:
            error = exc
        except TimeoutError:
            error = DeliveryError(f"no answer within {policy.timeout:g}s", retriable=True)
        if on_failed_attempt is not None:
            on_failed_attempt(error)
        if not error.retriable or attempt > policy.retry:
            return Outcome(False, attempt, error)
        attempt += 1
        await asyncio.sleep(_wait(policy, attempt, error))


def _wait(policy: DeliverySpec, attempt: int, error: DeliveryError) -> float:
    delay = policy.delay_before(attempt)
    if error.retry_after is not None:
        delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
    return delay
