"""What each backend cannot guarantee, stated once, with the reason.

Conformance tests for a guarantee ask :func:`require`; a backend listed here for
it is skipped with this reason (and the README's broker table says the same).
"""

from __future__ import annotations

import pytest

ORDERED_KEYS = "ordered-keys"
ATTEMPTS_SURVIVE_MEMBERS = "attempts-survive-members"

LIMITS: dict[str, dict[str, str]] = {
    "dapr": {
        ORDERED_KEYS: "Dapr's streaming subscription hands the app no partition key "
        "(TopicEventRequest has no metadata) and delivers events as the sidecar's component "
        "does, mostly concurrently (pubsub.redis runs 10 workers by default); a RETRY goes "
        "back through the component's redelivery, behind later events",
        ATTEMPTS_SURVIVE_MEMBERS: "TopicEventRequest carries no delivery count; the bus counts "
        "deliveries of the same CloudEvent (source and id) per group in its own process, so a "
        "member in another process starts again at attempt 1",
    },
    "kafka": {
        ATTEMPTS_SURVIVE_MEMBERS: "Kafka keeps no delivery count: a member that takes over a "
        "partition re-reads from the committed offset and cannot know it is a redelivery",
    },
    "memory": {
        ORDERED_KEYS: "the in-memory bus has one FIFO per group, but its members run "
        "concurrently, so per-key order holds only with a single consumer",
    },
    "redis": {
        ORDERED_KEYS: "a Redis stream is one log per topic; members of a group take entries "
        "concurrently, and a claimed-back entry is redelivered after later ones",
    },
    "jetstream": {
        ORDERED_KEYS: "a JetStream consumer shared by a group has no per-key ordering, and "
        "redeliveries (ackWait, nak) arrive after later messages",
    },
    "mqtt": {
        ORDERED_KEYS: "MQTT has no keys or partitions; shared subscriptions spread messages "
        "over members in no particular order (Dapr documents the same)",
    },
}


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
