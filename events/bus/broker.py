"""The descriptor a broker package declares: what it serves, and what it cannot guarantee.

Each package under ``events/brokers/`` declares one :class:`Broker` in its
``__init__.py`` and ``events.brokers.BROKERS`` lists them. Every registry (bus
backends, source kinds, dead-letter stores, state stores, output bindings) and the
tests' backend and capability tables are derived from those descriptors, so adding a
broker is one new folder plus one line.

Parts are named as ``"module:Class"`` strings and imported only when used: a process
that runs on Redis never imports the Kafka client, and loading manifests imports only
the settings models (which import no client library).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from events.bus.contract import GUARANTEES
from events.errors import BackendNotAvailable


@dataclass(frozen=True)
class Part:
    """One Dapr component type a broker serves: its implementation and its settings model."""

    component_type: str  # e.g. "pubsub.redis", "state.redis", "bindings.kafka"
    target: str  # "module:Class" of the implementation
    settings: str  # "module:Class" of its pydantic settings model (imports no client library)


@dataclass(frozen=True)
class Broker:
    """What one broker package offers. ``name`` is its folder and its pytest marker."""

    name: str
    requirement: str  # the pip package of its client library
    bus: Part
    #: the EventSource kind of the same name, as "module:Class", where the broker feeds one
    source: str | None = None
    #: the dead-letter store ("module:Class"), where letters can be read back ...
    letters: str | None = None
    #: ... or why they cannot (finishes "cannot read dead letters: the EventBus ...")
    no_letters: str | None = None
    state: Part | None = None  # a Dapr state store (condition state of Triggers)
    #: the key/value store behind Functions' ``context.state`` on that same state
    #: component type, as "module:Class"
    kv: str | None = None
    binding: Part | None = None  # a Dapr output binding
    #: guarantee (``events.bus.contract.GUARANTEES``) -> why this broker cannot give it
    limits: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.limits) - set(GUARANTEES)
        if unknown:
            raise ValueError(f"broker {self.name}: unknown guarantees {sorted(unknown)}")
        if self.kv is not None and self.state is None:
            raise ValueError(f"broker {self.name}: a kv store needs the state part it serves")
        if (self.letters is None) == (self.no_letters is None):
            raise ValueError(f"broker {self.name}: give exactly one of letters and no_letters")

    @property
    def guarantees(self) -> frozenset[str]:
        """The optional guarantees this broker gives."""
        return frozenset(GUARANTEES) - set(self.limits)

    def parts(self) -> list[Part]:
        return [p for p in (self.bus, self.state, self.binding) if p is not None]

    def load(self, target: str) -> Any:
        """The class named by ``target``; BackendNotAvailable says what to install."""
        module, _, name = target.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError as exc:
            raise BackendNotAvailable(
                f"{target} needs {self.requirement}: pip install {self.requirement} ({exc})"
            ) from exc
