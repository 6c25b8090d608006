"""fnevents' ``Function`` kind (``fnevents.dev/v1alpha1``): a Python function to host.

A sync function (no ``input``) is served over HTTP; an async function (with
``input``) consumes a bus topic. Either may declare ``outputs`` for
``context.send(name, data)``.

A Trigger or EventSource ``sink.ref`` that names a ``Function`` (OpenFunction's
``core.openfunction.io`` kind or this one) resolves to the local address of the
declared Function with that name and namespace, so OpenFunction manifests work
unchanged on a laptop:

    apiVersion: fnevents.dev/v1alpha1
    kind: Function
    metadata: {name: hello}
    spec:
      source: hello.py        # a file (relative to this manifest) or a module name
      target: hello           # the function to call with each CloudEvent
      port: 0                 # 0 picks a free port
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.manifests.common import Metadata, Model

API_VERSION = "fnevents.dev/v1alpha1"


class TopicRef(Model):
    """A topic on an EventBus (the function's own namespace's, then the cluster's)."""

    topic: str
    eventBus: str = "default"


class FunctionSpec(Model):
    source: str = Field(description="a .py file relative to the manifest, or a module name")
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the function to call")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    input: TopicRef | None = Field(
        default=None, description="makes this an async function consuming this topic"
    )
    outputs: dict[str, TopicRef] = Field(
        default_factory=dict, description="names for context.send(name, data)"
    )
    concurrency: int = Field(default=8, ge=1, le=1024, description="events in flight at once")
    maxDeliveries: int = Field(
        default=10, ge=1, description="deliveries of one event before it is dead-lettered"
    )


class Function(Model):
    model_config = Model.model_config | {"extra": "ignore"}

    apiVersion: Literal["fnevents.dev/v1alpha1"]
    kind: Literal["Function"]
    metadata: Metadata
    spec: FunctionSpec
