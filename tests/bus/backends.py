"""Every broker the code declares, as the tests run it: which fixture starts it, and the
component metadata that points a bus at it (Dapr's names). Timeouts are short so
redelivery tests run in seconds, not minutes.

The table is keyed by the descriptors in ``events.brokers.BROKERS``: a broker declared
there without a line here fails ``test_every_broker_has_a_test_setup``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from events.brokers import BROKERS
from events.brokers.registry import create_bus
from events.bus.broker import Broker
from events.bus.contract import EventBus
from events.bus.plan import BusPlan

#: broker name -> (the session fixture that starts it, its bus metadata)
SETUPS: dict[str, tuple[str | None, Callable[[Any], dict[str, str]]]] = {
    "memory": (None, lambda _: {}),
    "redis": (
        "redis_broker",
        lambda b: {"redisHost": b.address, "processingTimeout": "1s", "redeliverInterval": "200ms"},
    ),
    "kafka": (
        "kafka_broker",
        lambda b: {"brokers": b.address, "sessionTimeout": "2s", "heartbeatInterval": "500ms"},
    ),
    "jetstream": ("nats_broker", lambda b: {"natsURL": f"nats://{b.address}", "ackWait": "1s"}),
    "mqtt": ("mqtt_broker", lambda b: {"url": f"tcp://{b.address}"}),
    "dapr": (
        "dapr_sidecar",
        lambda s: {"pubsubName": s.pubsub_name, "grpcEndpoint": s.grpc_address},
    ),
}


@dataclass(frozen=True)
class Case:
    broker: Broker
    broker_fixture: str | None
    metadata: Callable[[Any], dict[str, str]]

    @property
    def component_type(self) -> str:
        return self.broker.bus.component_type

    @property
    def mark(self) -> pytest.MarkDecorator:
        return getattr(pytest.mark, self.broker.name)


BACKENDS: dict[str, Case] = {b.name: Case(b, *SETUPS[b.name]) for b in BROKERS if b.name in SETUPS}


def bus_on(
    component_type: str, metadata: Mapping[str, str], pubsub_name: str = "conformance"
) -> EventBus:
    """A bus (not started) built the way the runtime builds one."""
    plan = BusPlan(key=component_type, backend=component_type, via="tests", metadata=metadata)
    return create_bus(plan, pubsub_name=pubsub_name)


def make_bus(name: str, broker: Any, pubsub_name: str = "conformance", **extra: str) -> EventBus:
    """A bus for backend ``name`` on ``broker``, with ``extra`` metadata on top."""
    case = BACKENDS[name]
    return bus_on(case.component_type, {**case.metadata(broker), **extra}, pubsub_name)
