"""``pubsub.in-memory``: the embedded bus, a real backend with the contract's semantics."""

from events.bus.broker import Broker, Part
from events.bus.contract import ORDERED_KEYS

BROKER = Broker(
    name="memory",
    requirement="fnevents",
    bus=Part(
        "pubsub.in-memory",
        "events.brokers.memory.bus:MemoryBus",
        "events.brokers.memory.settings:MemorySettings",
    ),
    no_letters="is the embedded in-memory bus: it lives inside `fnevents run`, so its dead "
    "letters are gone when that process ends and no other process can read them",
    limits={
        ORDERED_KEYS: "the in-memory bus has one FIFO per group, but its members run "
        "concurrently, so per-key order holds only with a single consumer",
    },
)
