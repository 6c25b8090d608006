"""Backends for the bus conformance suite.

Every backend listed in ``BACKENDS`` runs every test in ``test_conformance.py``.
A backend plugs in with a factory (an async context manager yielding a started
bus) and a pytest marker, so ``pytest -m memory`` runs one backend alone.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from events.bus.contract import EventBus
from events.bus.memory import MemoryBus


@contextlib.asynccontextmanager
async def memory_bus() -> AsyncIterator[EventBus]:
    async with MemoryBus() as bus:
        yield bus


BACKENDS: dict[str, tuple[Callable[[], Any], pytest.MarkDecorator]] = {
    "memory": (memory_bus, pytest.mark.memory),
}


@pytest.fixture(params=[pytest.param(name, marks=mark) for name, (_, mark) in BACKENDS.items()])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    factory, _ = BACKENDS[request.param]
    async with factory() as started:
        yield started


@pytest.fixture
def topic() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"
