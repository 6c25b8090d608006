"""The explicit registry of bus backends: Dapr component type -> EventBus class.

Backends are imported only when used, so a process that runs on Redis never
imports the Kafka client (and startup stays fast).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pydantic import ValidationError

from events.bus.contract import EventBus
from events.errors import BackendNotAvailable, ManifestError
from events.manifests.buses import BusPlan


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
    "pubsub.in-memory": Backend("events.bus.memory:MemoryBus", "fnevents"),
    "pubsub.redis": Backend("events.bus.redis:RedisBus", "redis"),
    "pubsub.kafka": Backend("events.bus.kafka:KafkaBus", "aiokafka"),
    "pubsub.jetstream": Backend("events.bus.jetstream:JetStreamBus", "nats-py"),
    "pubsub.mqtt3": Backend("events.bus.mqtt:MqttBus", "paho-mqtt"),
    "dapr": Backend("events.bus.dapr:DaprSidecarBus", "dapr"),
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
        raise _metadata_error(plan, exc) from None


def create_bus(plan: BusPlan) -> EventBus:
    name = plan.component.name if plan.component is not None else "eventbus"
    return backend_class(plan)(settings_for(plan), pubsub_name=name)


def _metadata_error(plan: BusPlan, exc: ValidationError) -> ManifestError:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"]) or "?"
    if error["type"] == "extra_forbidden":
        problem = f"unknown metadata '{field}' for {plan.backend}"
    elif error["type"] == "missing":
        problem = f"metadata '{field}' is required for {plan.backend}"
    else:
        problem = f"metadata '{field}': {error['msg'].removeprefix('Value error, ')}"
    where = f"Component {plan.component.name}" if plan.component is not None else plan.via
    if plan.component is not None:
        return plan.component.error(problem, "spec.metadata")
    return ManifestError(f"{where}: {problem}")
