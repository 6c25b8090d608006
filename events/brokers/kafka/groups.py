"""Short-lived consumer groups on Kafka (``fnevents tail``).

A tail's group starts at the end: its bus reads with ``initialOffset: newest``, which
commits the end of each partition when the group is first assigned it. On exit the
group is deleted (Kafka's ``DeleteGroups``), once its member has left.
"""

from __future__ import annotations

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from events.brokers.kafka.client import client_options, group_id
from events.brokers.kafka.settings import KafkaSettings
from events.errors import BusError


def at_end(settings: KafkaSettings) -> KafkaSettings:
    return settings.model_copy(update={"initialOffset": "newest"})


async def prepare(settings: KafkaSettings, topic: str, group: str) -> None:
    """Nothing to do: the group is made, at the end, when the tail subscribes."""


async def delete(settings: KafkaSettings, topic: str, group: str) -> None:
    """Delete the Kafka group the bus uses for (``group``, ``topic``)."""
    # aiokafka 0.14's admin client has no delete_consumer_groups: send DeleteGroups
    # (API key 42) to the group's coordinator with its public client instead.
    options = {k: v for k, v in client_options(settings).items() if k != "retry_backoff_ms"}
    client = AIOKafkaClient(**options)
    name = group_id(settings, group, topic)
    try:
        await client.bootstrap()
        coordinator = await client.coordinator_lookup(CoordinationType.GROUP, name)
        response = await client.send(coordinator, DeleteGroupsRequest([name]))
        for _, code in response.results:
            if code:
                raise for_code(code)(f"deleting group {name}")
    except KafkaError as exc:
        raise BusError(f"Kafka did not delete consumer group {name}: {exc}") from exc
    finally:
        await client.close()
