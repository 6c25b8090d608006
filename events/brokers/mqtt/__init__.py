"""MQTT (3.1.1 and 5): the bus over shared subscriptions, and a source."""

from events.bus.broker import Broker, Part
from events.bus.contract import ORDERED_KEYS

BROKER = Broker(
    name="mqtt",
    requirement="paho-mqtt",
    bus=Part(
        "pubsub.mqtt3",
        "events.brokers.mqtt.bus:MqttBus",
        "events.brokers.mqtt.settings:MqttSettings",
    ),
    source="sources.mqtt:MqttSource",
    no_letters="is on MQTT: reading an MQTT message takes it off the broker, so letters "
    "cannot be listed without consuming them, and Mosquitto keeps a message only for sessions "
    "that subscribed before it was published (a retained message is just the last one)",
    limits={
        ORDERED_KEYS: "MQTT has no keys or partitions; shared subscriptions spread messages "
        "over members in no particular order (Dapr documents the same)",
    },
)
