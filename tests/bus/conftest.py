"""Fixtures of the bus conformance suite.

Every broker in ``events.brokers.BROKERS`` runs every test in ``test_conformance.py``
against a real broker (started by the session fixtures in ``tests/conftest.py``), set
up as ``tests/bus/backends.py`` says, and marked with its name, so ``pytest -m redis``
runs one backend alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from events.bus.contract import EventBus
from tests.bus.backends import BACKENDS, make_bus
from tests.bus.capabilities import require_broker


@pytest.fixture(params=[pytest.param(name, marks=case.mark) for name, case in BACKENDS.items()])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def broker(backend: str, request: pytest.FixtureRequest) -> Any:
    fixture = BACKENDS[backend].broker_fixture
    value = request.getfixturevalue(fixture) if fixture else None
    require_broker(backend, value)
    return value


@pytest.fixture
async def bus(backend: str, broker: Any) -> AsyncIterator[EventBus]:
    async with make_bus(backend, broker) as started:
        yield started


@pytest.fixture
def topic() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def dapr_sidecar(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The Dapr sidecar TEST DOUBLE (tests/dapr_sidecar), backed by a real bus: the backend
    named by FNEVENTS_TEST_DAPR_BACKING (a key of BACKENDS; memory by default)."""
    from tests.dapr_sidecar import running  # imported here: only dapr runs pay for grpc

    backing = os.environ.get("FNEVENTS_TEST_DAPR_BACKING", "memory")
    fixture = BACKENDS[backing].broker_fixture
    broker = request.getfixturevalue(fixture) if fixture else None
    with running({"pubsub": lambda: make_bus(backing, broker)}) as sidecar:
        yield sidecar
