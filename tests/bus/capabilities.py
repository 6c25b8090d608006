"""What each backend cannot guarantee, stated once, with the reason.

Conformance tests for a guarantee ask :func:`require`; a backend listed here for
it is skipped with this reason (and the README's broker table says the same).
"""

from __future__ import annotations

import pytest

ORDERED_KEYS = "ordered-keys"
ATTEMPTS_SURVIVE_MEMBERS = "attempts-survive-members"

LIMITS: dict[str, dict[str, str]] = {
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


def guarantees(backend: str, guarantee: str) -> bool:
    return guarantee not in LIMITS.get(backend, {})


def require(backend: str, guarantee: str) -> None:
    reason = LIMITS.get(backend, {}).get(guarantee)
    if reason:
        pytest.skip(f"{backend} does not guarantee {guarantee}: {reason}")
