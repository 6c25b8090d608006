"""Kafka: the bus, a source, an output binding, and readable dead letters."""

from events.bus.broker import Broker, Part
from events.bus.contract import ATTEMPTS_SURVIVE_MEMBERS

BROKER = Broker(
    name="kafka",
    requirement="aiokafka",
    bus=Part(
        "pubsub.kafka",
        "events.brokers.kafka.bus:KafkaBus",
        "events.brokers.kafka.settings:KafkaSettings",
    ),
    source="sources.kafka:KafkaSource",
    letters="events.brokers.kafka.letters:KafkaLetters",
    binding=Part(
        "bindings.kafka",
        "events.brokers.kafka.binding:KafkaBinding",
        "events.brokers.kafka.settings:KafkaBindingSettings",
    ),
    limits={
        ATTEMPTS_SURVIVE_MEMBERS: "Kafka keeps no delivery count: a member that takes over a "
        "partition re-reads from the committed offset and cannot know it is a redelivery",
    },
)
