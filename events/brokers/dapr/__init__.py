"""A Dapr sidecar's pub/sub, through the Dapr gRPC API (``spec.sidecar: true``)."""

from events.bus.broker import Broker, Part
from events.bus.contract import ATTEMPTS_SURVIVE_MEMBERS, ORDERED_KEYS

BROKER = Broker(
    name="dapr",
    requirement="dapr",
    bus=Part(
        "dapr",
        "events.brokers.dapr.bus:DaprSidecarBus",
        "events.brokers.dapr.settings:DaprSettings",
    ),
    no_letters="goes through a Dapr sidecar, whose API can only consume a topic, not look at "
    "it; point --components at the broker's own Component to read it directly",
    limits={
        ORDERED_KEYS: "Dapr's streaming subscription hands the app no partition key "
        "(TopicEventRequest has no metadata) and delivers events as the sidecar's component "
        "does, mostly concurrently (pubsub.redis runs 10 workers by default); a RETRY goes "
        "back through the component's redelivery, behind later events",
        ATTEMPTS_SURVIVE_MEMBERS: "TopicEventRequest carries no delivery count; the bus counts "
        "deliveries of the same CloudEvent (source and id) per group in its own process, so a "
        "member in another process starts again at attempt 1",
    },
)
