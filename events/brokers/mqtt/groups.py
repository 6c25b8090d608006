"""Short-lived consumer groups on MQTT (``fnevents tail``).

A group is a shared subscription ``$share/<group>/<topic>``; a new one receives only
what is published after it subscribed (the end). A tail's members connect with a
clean session, so when they disconnect the broker drops their sessions and the
subscription: nothing of the group is left to delete.
"""

from __future__ import annotations

from events.brokers.mqtt.settings import MqttSettings


def at_end(settings: MqttSettings) -> MqttSettings:
    return settings.model_copy(update={"cleanSession": True})


async def prepare(settings: MqttSettings, topic: str, group: str) -> None:
    """Nothing to do: subscribing makes the group."""


async def delete(settings: MqttSettings, topic: str, group: str) -> None:
    """Nothing to do: the clean sessions ended with the members."""
