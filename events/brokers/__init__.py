"""One package per broker technology, each declaring its :class:`~events.bus.broker.Broker`
in its ``__init__.py``. This list is the one place that says which brokers exist; every
registry derives from it (see :mod:`events.brokers.registry`)."""

from events.brokers import dapr, jetstream, kafka, memory, mqtt, redis
from events.bus.broker import Broker

BROKERS: tuple[Broker, ...] = (
    memory.BROKER,
    redis.BROKER,
    kafka.BROKER,
    jetstream.BROKER,
    mqtt.BROKER,
    dapr.BROKER,
)
