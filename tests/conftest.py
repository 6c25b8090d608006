"""Session-wide real brokers, started on first use (see tests/brokers/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import servers


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
