"""Session-wide real brokers, started on first use (see tests/brokers/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from events.brokers import BROKERS
from tests.brokers import servers


def pytest_configure(config: pytest.Config) -> None:
    """One marker per broker descriptor, so ``pytest -m redis`` runs one backend's tests."""
    for broker in BROKERS:
        config.addinivalue_line(
            "markers", f"{broker.name}: the {broker.bus.component_type} backend and what runs on it"
        )


def _broker(factory) -> Iterator[servers.Broker | servers.ExternalBroker]:
    with servers.running(factory()) as broker:
        yield broker


@pytest.fixture(scope="session")
def redis_broker():
    yield from _broker(servers.redis)


@pytest.fixture(scope="session")
def nats_broker():
    yield from _broker(servers.nats)


@pytest.fixture(scope="session")
def kafka_broker():
    yield from _broker(servers.kafka)


@pytest.fixture(scope="session")
def mqtt_broker():
    yield from _broker(servers.mqtt)
