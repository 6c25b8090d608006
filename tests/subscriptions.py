"""Reading a bus subscription in tests."""

from __future__ import annotations

import asyncio

from events.bus.contract import Subscription


async def nothing_within(subscription: Subscription, seconds: float) -> bool:
    """True if no message arrives on ``subscription`` within ``seconds``."""
    try:
        await asyncio.wait_for(anext(subscription), seconds)
    except TimeoutError:
        return True
    return False
