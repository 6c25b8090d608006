"""OpenFunction's ``core.openfunction.io`` Function kind, ``v1beta1`` and ``v1beta2``.

Field names and shapes follow OpenFunction's Go types (``apis/core/v1beta1`` and
``apis/core/v1beta2``: ``function_types.go``, ``serving_types.go``,
``builder_types.go``), so its manifests load unchanged. Parts that only Kubernetes reads
(a pod ``template``, a Gateway ``route``, KEDA's ``advanced`` settings) are kept as
plain mappings. What fnevents makes of each field is decided in
``events.app.ofn_functions``; this module only reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from events.manifests.common import Metadata, Model
from events.manifests.dapr import ComponentSpec

GROUP = "core.openfunction.io"
V1BETA1 = f"{GROUP}/v1beta1"
V1BETA2 = f"{GROUP}/v1beta2"
DEFAULT_PORT = 8080  # OpenFunction's constants.DefaultFuncPort

#: A Kubernetes object OpenFunction passes on as it is (a PodSpec, an HTTPRoute rule, ...).
Object = dict[str, Any]


class GitRepo(Model):
    url: str | None = None
    bundleContainer: Object | None = None
    revision: str | None = None
    sourceSubPath: str | None = None
    credentials: Object | None = None


class Build(Model):
    """``spec.build``: how OpenFunction builds the image; fnevents reads where the code is,
    the builder (its language and framework) and ``env`` (the target)."""

    builder: str | None = None
    builderCredentials: Object | None = None
    shipwright: Object | None = None
    params: dict[str, Any] | None = Field(default=None, description="v1beta1 only")
    env: dict[str, Any] = Field(default_factory=dict)
    srcRepo: GitRepo | None = None
    dockerfile: str | None = None
    timeout: str | None = None
    successfulBuildsHistoryLimit: int | None = None
    failedBuildsHistoryLimit: int | None = None
    builderMaxAge: str | None = None

    def env_value(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None else str(value)


class KedaOptions(Model):
    """``scaleOptions.keda``; v1beta1 has no ``triggers`` here (they are
    ``serving.triggers``) and v1beta2 has no replica counts in ``scaledObject``."""

    httpScaledObject: Object | None = None
    scaledObject: Object | None = None
    scaledJob: Object | None = None
    triggers: list[Object] | None = None


class ScaleOptions(Model):
    maxReplicas: int | None = None
    minReplicas: int | None = None
    keda: KedaOptions | None = None
    knative: dict[str, Any] | None = None


class Hooks(Model):
    pre: list[str] = Field(default_factory=list)
    post: list[str] = Field(default_factory=list)
    policy: str | None = None


class DaprComponentRef(Model):
    """v1beta2: a Dapr component by name, defined in ``bindings``/``pubsub``/``states``
    or existing; ``type`` is looked up when not given."""

    name: str
    type: str | None = None
    topic: str | None = None


class DaprTrigger(DaprComponentRef):
    inputName: str | None = Field(default=None, description="deprecated: from v1beta1")


class DaprOutput(DaprComponentRef):
    metadata: dict[str, Any] = Field(default_factory=dict)
    operation: str | None = None
    outputName: str | None = Field(default=None, description="deprecated: from v1beta1")


class Input(Model):
    dapr: DaprComponentRef | None = None


class Output(Model):
    dapr: DaprOutput | None = None


class HttpTrigger(Model):
    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="default 8080; 0 (an fnevents extension) picks a free port",
    )
    route: Object | None = None
    engine: Literal["knative", "keda"] | None = None


class Triggers(Model):
    http: HttpTrigger | None = None
    dapr: list[DaprTrigger] = Field(default_factory=list)
    inputs: list[Input] = Field(default_factory=list)


class State(Model):
    spec: ComponentSpec | None = None


class _Serving(Model):
    """What both versions' ``spec.serving`` have."""

    scaleOptions: ScaleOptions | None = None
    bindings: dict[str, ComponentSpec] = Field(default_factory=dict)
    pubsub: dict[str, ComponentSpec] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    template: Object | None = None
    timeout: str | None = None


class ServingV1beta2(_Serving):
    triggers: Triggers | None = None
    outputs: list[Output] = Field(default_factory=list)
    states: dict[str, State | None] = Field(default_factory=dict)
    hooks: Hooks | None = None
    tracing: Object | None = None
    workloadType: str | None = None
    runtime: str | None = Field(
        default=None,
        description="a v1beta1 field some v1beta2 samples still carry; OpenFunction's API "
        "server drops it",
    )


class DaprIO(Model):
    """v1beta1's input or output: ``component`` is the Dapr component's name."""

    name: str
    component: str
    topic: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    operation: str | None = None


class KedaScaleTrigger(Model):
    """v1beta1 ``serving.triggers``: a KEDA ScaleTriggers, plus ``targetKind``."""

    model_config = Model.model_config | {"extra": "allow"}

    type: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    targetKind: Literal["object", "job"] | None = None


class ServingV1beta1(_Serving):
    runtime: Literal["knative", "async"]
    inputs: list[DaprIO] = Field(default_factory=list)
    outputs: list[DaprIO] = Field(default_factory=list)
    states: dict[str, ComponentSpec] = Field(default_factory=dict)
    triggers: list[KedaScaleTrigger] = Field(default_factory=list)


class _Spec(Model):
    workloadRuntime: str | None = None
    version: str | None = None
    image: str | None = None
    imageCredentials: Object | None = None
    build: Build | None = None


class SpecV1beta1(_Spec):
    port: int | None = Field(default=None, ge=0, le=65535, description="as triggers.http.port")
    route: Object | None = None
    serving: ServingV1beta1 | None = None


class SpecV1beta2(_Spec):
    serving: ServingV1beta2 | None = None


class _Function(Model):
    model_config = Model.model_config | {"extra": "ignore"}  # 'status' and friends

    kind: Literal["Function"]
    metadata: Metadata


class FunctionV1beta1(_Function):
    apiVersion: Literal["core.openfunction.io/v1beta1"]
    spec: SpecV1beta1


class FunctionV1beta2(_Function):
    apiVersion: Literal["core.openfunction.io/v1beta2"]
    spec: SpecV1beta2


OpenFunctionFunction = FunctionV1beta1 | FunctionV1beta2
