"""Short-lived consumer groups on NATS JetStream (``fnevents tail``).

A tail's group is a durable consumer created with deliver policy ``new`` (only
messages stored after it exists), removed on exit with the consumer-delete API.
"""

from __future__ import annotations

from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from events.brokers.jetstream.client import JetStreamClient
from events.brokers.jetstream.settings import JetStreamSettings
from events.errors import BusError


def at_end(settings: JetStreamSettings) -> JetStreamSettings:
    return settings.model_copy(
        update={"deliverPolicy": "new", "startSequence": None, "startTime": None}
    )


async def prepare(settings: JetStreamSettings, topic: str, group: str) -> None:
    """Nothing to do: the consumer is created, at the end, when the tail subscribes."""


async def delete(settings: JetStreamSettings, topic: str, group: str) -> None:
    """Delete the durable consumer of ``group`` on ``topic``'s stream."""
    link = await JetStreamClient(settings, settings.natsURL).open()
    try:
        stream = await link.streams.stream_for(topic)
        durable = stream.consumer_name(group, topic, settings.durableName)
        await link.jsm.delete_consumer(stream.name, durable)
    except NotFoundError:
        return
    except (NatsError, OSError, TimeoutError) as exc:
        raise BusError(f"NATS did not delete the consumer of {group} on {topic}: {exc}") from exc
    finally:
        await link.close()
