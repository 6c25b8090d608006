"""The explicit registry of bus backends: Dapr component type -> EventBus class.

Backends are imported only when used, so a process that runs on Redis never
imports the Kafka client (and startup stays fast).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from events.app.plans import BusPlan
from events.bus.contract import EventBus
from events.errors import BackendNotAvailable, ManifestError
from events.manifests.loader import Loaded


@dataclass(frozen=True)
class Backend:
    target: str  # "module:Class"
    requirement: str  # the pip package that provides the client library

    def load(self) -> type[EventBus]:
        module, _, name = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError as exc:
            raise BackendNotAvailable(
                f"{self.target} needs {self.requirement}: pip install {self.requirement} ({exc})"
            ) from exc


BACKENDS: dict[str, Backend] = {
    "pubsub.in-memory": Backend("events.brokers.memory.bus:MemoryBus", "fnevents"),
    "pubsub.redis": Backend("events.brokers.redis.bus:RedisBus", "redis"),
    "pubsub.kafka": Backend("events.brokers.kafka.bus:KafkaBus", "aiokafka"),
    "pubsub.jetstream": Backend("events.brokers.jetstream.bus:JetStreamBus", "nats-py"),
    "pubsub.mqtt3": Backend("events.brokers.mqtt.bus:MqttBus", "paho-mqtt"),
    "dapr": Backend("events.brokers.dapr.bus:DaprSidecarBus", "dapr"),
}


def backend_class(plan: BusPlan) -> type[EventBus]:
    """The class for ``plan``'s backend; raises BackendNotAvailable naming what is missing."""
    backend = BACKENDS.get(plan.backend)
    if backend is None:
        available = ", ".join(sorted(BACKENDS))
        raise BackendNotAvailable(
            f"{plan.via}: unknown pub/sub type '{plan.backend}'; available: {available}"
        )
    return backend.load()


def settings_for(plan: BusPlan):
    """Validate the component's metadata against the backend's settings model."""
    cls = backend_class(plan)
    try:
        return cls.Settings.model_validate(dict(plan.metadata))
    except ValidationError as exc:
        raise metadata_error(exc, plan.backend, plan.component, plan.via) from None


def create_bus(plan: BusPlan) -> EventBus:
    name = plan.component.name if plan.component is not None else "eventbus"
    return backend_class(plan)(settings_for(plan), pubsub_name=name)


def metadata_error(
    exc: ValidationError,
    backend: str,
    component: Loaded | None,
    via: str,
    known: Iterable[str] = (),
) -> ManifestError:
    """A component's settings error as a ManifestError naming the Component and the field;
    an unknown name gets the closest of ``known`` as a suggestion."""
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"]) or "?"
    if error["type"] == "extra_forbidden":
        guess = difflib.get_close_matches(field, list(known), n=1)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        problem = f"unknown metadata '{field}' for {backend}{hint}"
    elif error["type"] == "missing":
        problem = f"metadata '{field}' is required for {backend}"
    else:
        problem = f"metadata '{field}': {error['msg'].removeprefix('Value error, ')}"
    if component is not None:
        return component.error(problem, "spec.metadata")
    return ManifestError(f"{via}: {problem}")
