"""NATS JetStream: the bus (and OpenFunction's ``natsStreaming``), and readable dead letters."""

from events.bus.broker import Broker, Part
from events.bus.contract import ORDERED_KEYS

BROKER = Broker(
    name="jetstream",
    requirement="nats-py",
    bus=Part(
        "pubsub.jetstream",
        "events.brokers.jetstream.bus:JetStreamBus",
        "events.brokers.jetstream.settings:JetStreamSettings",
    ),
    letters="events.brokers.jetstream.letters:JetStreamLetters",
    limits={
        ORDERED_KEYS: "a JetStream consumer shared by a group has no per-key ordering, and "
        "redeliveries (ackWait, nak) arrive after later messages",
    },
)
