"""A Dapr input binding, read as the EventSource event that does the same work.

OpenFunction feeds an async function from a Dapr input binding Component. fnevents
already has a source for each of the binding types below, so the binding becomes one
event of an EventSource (named as the Function) that publishes on the bus, and the
function consumes that event's topic. One table, one mechanism: each row maps a
binding type to a source kind and Dapr's metadata names to the source's fields.

Metadata a row does not map is reported by name, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Dapr metadata name -> EventSource field (same meaning), per source kind.
_KAFKA = {
    "brokers": "brokers",
    "consumerGroup": "consumerGroup",
    "saslUsername": "saslUsername",
    "saslPassword": "saslPassword",
    "initialOffset": "initialOffset",
    "sessionTimeout": "sessionTimeout",
    "caCert": "caCert",
    "clientCert": "clientCert",
    "clientKey": "clientKey",
}
_MQTT = {
    "url": "url",
    "topic": "topic",
    "consumerID": "consumerID",
    "qos": "qos",
    "retain": "retain",
    "cleanSession": "cleanSession",
    "caCert": "caCert",
    "clientCert": "clientCert",
    "clientKey": "clientKey",
}
#: Names Dapr reads that change nothing for an input here (the output side, or routing).
_OUTPUT_SIDE = {"publishTopic", "direction", "route", "partitionKey", "maxMessageBytes"}


@dataclass(frozen=True)
class InputEvent:
    """One EventSource event: its kind (``kafka``, ``cron``, ``mqtt``), its settings, and
    the binding metadata that had no counterpart."""

    kind: str
    settings: dict[str, Any]
    unused: list[str]


def _kafka(metadata: dict[str, str]) -> InputEvent:
    settings, unused = _rename(metadata, _KAFKA, {"topics", "authRequired", "authType"})
    topics = [t.strip() for t in metadata.get("topics", "").split(",") if t.strip()]
    if len(topics) != 1:
        raise ValueError(
            f"a bindings.kafka input needs exactly one topic in metadata 'topics' (got "
            f"{metadata.get('topics', 'none')!r}); fnevents reads one topic per input"
        )
    settings["topic"] = topics[0]
    auth = metadata.get("authType", "").lower()
    settings["authRequired"] = (
        auth == "password" if auth else metadata.get("authRequired", "false").lower() == "true"
    )
    if auth not in ("", "none", "password"):
        raise ValueError(f"authType {auth!r} is not supported for an input (none or password)")
    return InputEvent("kafka", settings, unused)


def _cron(metadata: dict[str, str]) -> InputEvent:
    settings, unused = _rename(metadata, {"schedule": "schedule"}, set())
    if "schedule" not in settings:
        raise ValueError("a bindings.cron input needs metadata 'schedule'")
    return InputEvent("cron", settings, unused)


def _mqtt(metadata: dict[str, str]) -> InputEvent:
    settings, unused = _rename(metadata, _MQTT, set())
    settings["protocolVersion"] = "3.1.1"  # Dapr's MQTT binding speaks MQTT 3.1.1
    return InputEvent("mqtt", settings, unused)


def _rename(
    metadata: dict[str, str], names: dict[str, str], read_elsewhere: set[str]
) -> tuple[dict[str, Any], list[str]]:
    settings = {names[k]: v for k, v in metadata.items() if k in names}
    known = names.keys() | read_elsewhere | _OUTPUT_SIDE
    return settings, sorted(k for k in metadata if k not in known)


#: Dapr input binding type -> how it becomes an EventSource event.
BINDING_INPUTS: dict[str, Callable[[dict[str, str]], InputEvent]] = {
    "bindings.kafka": _kafka,
    "bindings.cron": _cron,
    "bindings.mqtt3": _mqtt,
    "bindings.mqtt": _mqtt,  # the name before Dapr 1.11
}


def input_event(binding_type: str, metadata: dict[str, str]) -> InputEvent:
    """The EventSource event for a binding; KeyError for a type without a source,
    ValueError for metadata that cannot work."""
    return BINDING_INPUTS[binding_type](metadata)
