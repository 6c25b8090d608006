"""What each backend cannot guarantee, as the broker descriptors state it, with the reason.

Conformance tests for a guarantee ask :func:`require`; a backend whose descriptor
lists it is skipped with that reason (and the README's broker table says the same).
"""

from __future__ import annotations

import pytest

from events.brokers import BROKERS
from events.bus.contract import ATTEMPTS_SURVIVE_MEMBERS, ORDERED_KEYS

__all__ = ["ATTEMPTS_SURVIVE_MEMBERS", "LIMITS", "ORDERED_KEYS", "guarantees", "require"]

#: broker name -> {guarantee: why it is not given}, as each broker's descriptor declares
LIMITS: dict[str, dict[str, str]] = {b.name: dict(b.limits) for b in BROKERS}


#: Fallback brokers that cannot carry a backend at all, with the reason.
UNSUPPORTED_BROKERS: dict[str, str] = {
    "amqtt": "amqtt 0.12, the pip-only fallback when Mosquitto is absent, has no shared "
    "subscriptions ($share/<group>/<topic> is granted but matches nothing) and drops an "
    "unacked QoS 1 message when its subscriber disconnects or takes over 5 s to PUBACK, so "
    "MqttBus's groups and at-least-once delivery cannot work on it; install Mosquitto "
    "(apt-get install mosquitto) to run the MQTT bus tests",
}


def require_broker(backend: str, broker: object) -> None:
    reason = UNSUPPORTED_BROKERS.get(getattr(broker, "name", ""))
    if reason:
        pytest.skip(f"{backend} cannot run on {broker.name}: {reason}")  # type: ignore[attr-defined]


def guarantees(backend: str, guarantee: str) -> bool:
    return guarantee not in LIMITS.get(backend, {})


def require(backend: str, guarantee: str) -> None:
    reason = LIMITS.get(backend, {}).get(guarantee)
    if reason:
        pytest.skip(f"{backend} does not guarantee {guarantee}: {reason}")
