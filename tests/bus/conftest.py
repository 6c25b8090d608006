"""Backends for the bus conformance suite.

Every backend in ``BACKENDS`` runs every test in ``test_conformance.py`` against a
real broker (started by the session fixtures in ``tests/conftest.py``). A backend
plugs in with a function that turns the broker fixture into component metadata
(Dapr's names), and a marker, so ``pytest -m redis`` runs one backend alone.
Timeouts are short so redelivery tests run in seconds, not minutes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from events.brokers.registry import BACKENDS as REGISTRY
from events.bus.contract import EventBus
from tests.bus.capabilities import require_broker


@dataclass(frozen=True)
class Case:
    component_type: str
    broker_fixture: str | None
    metadata: Callable[[Any], dict[str, str]]
    mark: pytest.MarkDecorator


BACKENDS: dict[str, Case] = {
    "memory": Case("pubsub.in-memory", None, lambda _: {}, pytest.mark.memory),
    "redis": Case(
        "pubsub.redis",
        "redis_broker",
        lambda b: {"redisHost": b.address, "processingTimeout": "1s", "redeliverInterval": "200ms"},
        pytest.mark.redis,
    ),
    "kafka": Case(
        "pubsub.kafka",
        "kafka_broker",
        lambda b: {"brokers": b.address, "sessionTimeout": "2s", "heartbeatInterval": "500ms"},
        pytest.mark.kafka,
    ),
    "jetstream": Case(
        "pubsub.jetstream",
        "nats_broker",
        lambda b: {"natsURL": f"nats://{b.address}", "ackWait": "1s"},
        pytest.mark.jetstream,
    ),
    "mqtt": Case(
        "pubsub.mqtt3", "mqtt_broker", lambda b: {"url": f"tcp://{b.address}"}, pytest.mark.mqtt
    ),
    "dapr": Case(
        "dapr",
        "dapr_sidecar",
        lambda s: {"pubsubName": s.pubsub_name, "grpcEndpoint": s.grpc_address},
        pytest.mark.dapr,
    ),
}


def make_bus(name: str, broker: Any) -> EventBus:
    """A bus for backend ``name`` on ``broker``, built the way the runtime builds one."""
    case = BACKENDS[name]
    cls = REGISTRY[case.component_type].load()
    return cls(cls.Settings.model_validate(case.metadata(broker)), pubsub_name="conformance")


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
