"""Redis: Streams as the bus and a source, condition state, Functions' key/value state, and
readable dead letters."""

from events.bus.broker import Broker, Part
from events.bus.contract import ORDERED_KEYS

BROKER = Broker(
    name="redis",
    requirement="redis",
    bus=Part(
        "pubsub.redis",
        "events.brokers.redis.bus:RedisBus",
        "events.brokers.redis.settings:RedisSettings",
    ),
    source="sources.redis:RedisSource",
    letters="events.brokers.redis.letters:RedisLetters",
    state=Part(
        "state.redis",
        "events.brokers.redis.state:RedisState",
        "events.brokers.redis.state:RedisStateSettings",
    ),
    kv="events.brokers.redis.kv:RedisKeyValue",
    limits={
        ORDERED_KEYS: "a Redis stream is one log per topic; members of a group take entries "
        "concurrently, and a claimed-back entry is redelivered after later ones",
    },
)
