"""fnevents' ``Function`` kind (``fnevents.dev/v1alpha1``): a Python function to host.

A sync function (no ``input``) is served over HTTP; an async function (with
``input``) consumes a bus topic. Either may declare ``outputs`` for
``context.send(name, data)``: a bus topic, or a Dapr output binding Component
(``bindings.kafka``).

A Trigger or EventSource ``sink.ref`` that names a ``Function`` (OpenFunction's
``core.openfunction.io`` kind or this one) resolves to the address of the
declared Function with that name and namespace, so OpenFunction manifests work
unchanged on a laptop: the local server when the Function runs in the same
process, else its ``url``, else ``http://host:port/`` (which needs a fixed port).

    apiVersion: fnevents.dev/v1alpha1
    kind: Function
    metadata: {name: hello}
    spec:
      source: hello.py        # a file (relative to this manifest) or a module name
      target: hello           # the function to call with each CloudEvent
      port: 0                 # 0 picks a free port
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from events.errors import quote
from events.manifests.common import Metadata, Model

API_VERSION = "fnevents.dev/v1alpha1"
DEFAULT_BUS = "default"


class TopicRef(Model):
    """A topic on an EventBus (the function's own namespace's, then the cluster's)."""

    topic: str
    eventBus: str = DEFAULT_BUS


class OutputRef(Model):
    """Where ``context.send(name, data)`` goes: a bus topic, or a binding Component.

    ``{topic, eventBus}`` publishes on the bus; ``{component}`` invokes a Dapr
    output binding (``bindings.kafka``: ``topic``, when given, overrides the
    Component's ``publishTopic``).
    """

    topic: str | None = Field(default=None, description="the bus topic, or the Kafka topic")
    eventBus: str | None = Field(
        default=None, description=f"the EventBus of a topic output (default '{DEFAULT_BUS}')"
    )
    component: str | None = Field(
        default=None, description="a Dapr output binding Component (bindings.kafka)"
    )
    operation: str | None = Field(
        default=None,
        description="a binding output's Dapr operation (OpenFunction's outputs[].operation); "
        "bindings.kafka does 'create'",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="a binding output's Dapr request metadata (OpenFunction's "
        "outputs[].metadata); recorded and shown, not yet sent",
    )

    @model_validator(mode="after")
    def _one_target(self) -> OutputRef:
        if self.component is not None and self.eventBus is not None:
            raise ValueError(
                "an output is either a bus topic {topic, eventBus} or a binding "
                "{component, topic?}, not both: remove 'eventBus' or 'component'"
            )
        if self.component is None and self.topic is None:
            raise ValueError(
                "an output needs 'topic' (a bus topic, with optional 'eventBus') or "
                "'component' (a Dapr output binding such as bindings.kafka)"
            )
        return self

    @property
    def bus(self) -> str | None:
        """The EventBus this output publishes on; None for a binding."""
        return None if self.component is not None else self.eventBus or DEFAULT_BUS


class KedaScaling(Model):
    """OpenFunction's ``scaleOptions.keda``: passed to the rendered KEDA ScaledObject."""

    model_config = Model.model_config | {"extra": "allow"}

    scaledObject: dict[str, Any] | None = None
    triggers: list[dict[str, Any]] | None = None


class ScaleOptions(Model):
    """OpenFunction's Function ``scaleOptions``: used by ``fnevents render`` (replica
    bounds and the KEDA ScaledObject); one process runs one replica."""

    minReplicas: int | None = Field(default=None, ge=0)
    maxReplicas: int | None = Field(default=None, ge=1)
    keda: KedaScaling | None = None


class FunctionSpec(Model):
    source: str = Field(description="a .py file relative to the manifest, or a module name")
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the function to call")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    url: str | None = Field(
        default=None,
        description="sync only: the address other processes reach this function at "
        "(e.g. a Kubernetes Service); default http://host:port/",
    )
    input: TopicRef | None = Field(
        default=None, description="makes this an async function consuming this topic"
    )
    outputs: dict[str, OutputRef] = Field(
        default_factory=dict, description="names for context.send(name, data)"
    )
    concurrency: int = Field(default=8, ge=1, le=1024, description="events in flight at once")
    maxDeliveries: int = Field(
        default=10, ge=1, description="deliveries of one event before it is dead-lettered"
    )
    framework: Literal["fnevents", "google-http", "google-cloudevent", "ofn"] = Field(
        default="fnevents",
        description="how the target is called: fnevents (event) or (context, event); "
        "google-http / google-cloudevent (Google's functions framework signatures); ofn "
        "(OpenFunction's Python functions framework)",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="environment variables for the function's process"
    )
    states: dict[str, str] = Field(
        default_factory=dict,
        description="context.state stores: a name the code uses -> a state.redis Component",
    )
    scaleOptions: ScaleOptions | None = Field(
        default=None, description="replicas and KEDA settings for `fnevents render`"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {quote(value)}")
        return value


class Function(Model):
    model_config = Model.model_config | {"extra": "ignore"}

    apiVersion: Literal["fnevents.dev/v1alpha1"]
    kind: Literal["Function"]
    metadata: Metadata
    spec: FunctionSpec
