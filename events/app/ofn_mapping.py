"""One view of an OpenFunction Function, whichever its version, with what fnevents ignores.

A v1beta1 Function is read as OpenFunction's own conversion to v1beta2 reads it
(``apis/core/v1beta1/function_conversion.go``): ``runtime: knative`` is an HTTP trigger
on ``spec.port``; ``runtime: async`` turns each ``inputs`` entry into a Dapr trigger;
``serving.triggers`` are KEDA triggers; ``scaledObject.minReplicaCount`` and
``maxReplicaCount`` become the replica bounds; the ``plugins`` and ``plugins.tracing``
annotations are hooks and tracing.

Every field fnevents does not act on is listed in :attr:`Serving.notes` with the reason,
so nothing is ignored silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from events.manifests.dapr import ComponentSpec
from events.manifests.function import KedaScaling, ScaleOptions
from events.manifests.ofn_function import (
    DEFAULT_PORT,
    Build,
    FunctionV1beta1,
    FunctionV1beta2,
    ServingV1beta1,
    ServingV1beta2,
)

FOR_THE_CLUSTER = "is for the cluster (building and pulling the image); fnevents runs the code"
NOT_YET = "is not supported yet: fnevents runs each function as one local process"
TRACING = (
    "accepted; fnevents tracing is configured with OTEL_* environment variables / "
    "--otlp-endpoint, not per Function"
)
RUNTIME_V1BETA1 = (
    "is a v1beta1 field; in v1beta2 OpenFunction's API server drops it, and the triggers "
    "decide (http: sync, dapr: async)"
)


@dataclass(frozen=True)
class Ref:
    """A Dapr component a Function reads or writes, and the field it was declared in."""

    field: str
    name: str  # the component's name in the manifest (a bindings/pubsub/states key, or existing)
    alias: str  # what the code calls it (v1beta1's input/output name, else the component)
    type: str | None = None
    topic: str | None = None
    operation: str | None = None
    metadata: dict[str, str] = dataclass_field(default_factory=dict)


@dataclass
class Serving:
    """What fnevents reads from a Function, version-independent."""

    sync: bool
    port: int
    inputs: list[Ref]
    outputs: list[Ref]
    state_inputs: list[Ref]  # v1beta2 triggers.inputs: state stores read as input
    bindings: dict[str, ComponentSpec]
    pubsub: dict[str, ComponentSpec]
    states: dict[str, ComponentSpec | None]
    params: dict[str, str]
    annotations: dict[str, str]
    scale: ScaleOptions | None
    notes: list[tuple[str, str]]  # (field, why fnevents does not act on it)


def read_serving(function: FunctionV1beta1 | FunctionV1beta2) -> Serving:
    notes = _spec_notes(function)
    if isinstance(function, FunctionV1beta1):
        serving = _v1beta1(function, notes)
    else:
        serving = _v1beta2(function, notes)
    return serving


def _spec_notes(function: FunctionV1beta1 | FunctionV1beta2) -> list[tuple[str, str]]:
    spec, notes = function.spec, []
    for name in ("image", "imageCredentials"):
        if getattr(spec, name):
            notes.append((f"spec.{name}", FOR_THE_CLUSTER))
    if spec.build is not None:
        notes += _build_notes(spec.build)
    if spec.workloadRuntime and spec.workloadRuntime != "OCIContainer":
        notes.append(("spec.workloadRuntime", f"'{spec.workloadRuntime}' {NOT_YET}"))
    annotations = function.metadata.annotations
    if "plugins" in annotations:
        notes.append(("metadata.annotations.plugins", f"(hooks) {NOT_YET}"))
    if "plugins.tracing" in annotations:
        notes.append(("metadata.annotations.plugins.tracing", TRACING))
    return notes


def _build_notes(build: Build) -> list[tuple[str, str]]:
    used = {"builder", "env", "srcRepo"}
    notes = [
        (f"spec.build.{name}", FOR_THE_CLUSTER)
        for name in Build.model_fields
        if name not in used and getattr(build, name) not in (None, {}, [])
    ]
    if build.srcRepo is not None:
        for name in ("revision", "credentials", "bundleContainer"):
            if getattr(build.srcRepo, name):
                notes.append((f"spec.build.srcRepo.{name}", FOR_THE_CLUSTER))
    return notes


def _strings(values: dict[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def _common_notes(serving: ServingV1beta1 | ServingV1beta2, notes: list[tuple[str, str]]) -> None:
    if serving.template:
        notes.append(("spec.serving.template", f"(a pod template) {NOT_YET}"))
    for key in sorted(k for k in serving.annotations if k.startswith("dapr.io/")):
        notes.append((f"spec.serving.annotations.{key}", "is for the cluster's Dapr sidecar"))
    if serving.labels:
        notes.append(("spec.serving.labels", "are labels for the cluster's workload"))
    if serving.timeout:
        notes.append(("spec.serving.timeout", "is how long the cluster waits for the workload"))
    options = serving.scaleOptions
    if options is not None and options.knative:
        notes.append(("spec.serving.scaleOptions.knative", "is for Knative; fnevents has none"))
    if options is not None and options.keda is not None:
        for name in ("httpScaledObject", "scaledJob"):
            if getattr(options.keda, name):
                notes.append((f"spec.serving.scaleOptions.keda.{name}", NOT_YET))


def _v1beta2(function: FunctionV1beta2, notes: list[tuple[str, str]]) -> Serving:
    serving = function.spec.serving or ServingV1beta2()
    triggers = serving.triggers
    _common_notes(serving, notes)
    if serving.runtime is not None:
        notes.append(("spec.serving.runtime", RUNTIME_V1BETA1))
    if serving.hooks is not None:
        notes.append(("spec.serving.hooks", NOT_YET))
    if serving.tracing is not None:
        notes.append(("spec.serving.tracing", TRACING))
    if serving.workloadType in ("Job", "StatefulSet"):
        notes.append(("spec.serving.workloadType", f"'{serving.workloadType}' {NOT_YET}"))
    http = triggers.http if triggers else None
    if http is not None and http.route:
        notes.append(("spec.serving.triggers.http.route", "is for the cluster's Gateway"))
    if http is not None and http.engine:
        notes.append(("spec.serving.triggers.http.engine", "is for the cluster"))
    inputs = [
        Ref(f"spec.serving.triggers.dapr[{i}]", t.name, t.inputName or t.name, t.type, t.topic)
        for i, t in enumerate(triggers.dapr if triggers else [])
    ]
    state_inputs = [
        Ref(f"spec.serving.triggers.inputs[{i}].dapr", t.dapr.name, t.dapr.name, t.dapr.type)
        for i, t in enumerate(triggers.inputs if triggers else [])
        if t.dapr is not None
    ]
    outputs = [
        Ref(
            f"spec.serving.outputs[{i}].dapr",
            o.dapr.name,
            o.dapr.outputName or o.dapr.name,
            o.dapr.type,
            o.dapr.topic,
            o.dapr.operation,
            _strings(o.dapr.metadata),
        )
        for i, o in enumerate(serving.outputs)
        if o.dapr is not None
    ]
    return Serving(
        sync=not inputs,  # OpenFunction: async as soon as there is a Dapr trigger
        port=DEFAULT_PORT if http is None or http.port is None else http.port,
        inputs=inputs,
        outputs=outputs,
        state_inputs=state_inputs,
        bindings=dict(serving.bindings),
        pubsub=dict(serving.pubsub),
        states={k: v.spec if v else None for k, v in serving.states.items()},
        params=_strings(serving.params),
        annotations=dict(serving.annotations),
        scale=_scale(serving),
        notes=notes,
    )


def _scale(serving: ServingV1beta2) -> ScaleOptions | None:
    options = serving.scaleOptions
    if options is None:
        return None
    keda = None
    if options.keda is not None and (options.keda.scaledObject or options.keda.triggers):
        keda = KedaScaling(scaledObject=options.keda.scaledObject, triggers=options.keda.triggers)
    return ScaleOptions(minReplicas=options.minReplicas, maxReplicas=options.maxReplicas, keda=keda)


def _v1beta1(function: FunctionV1beta1, notes: list[tuple[str, str]]) -> Serving:
    serving = function.spec.serving or ServingV1beta1(runtime="knative")
    _common_notes(serving, notes)
    if function.spec.route:
        notes.append(("spec.route", "is for the cluster's Gateway"))
    sync = serving.runtime == "knative"
    if sync and serving.inputs:
        notes.append(("spec.serving.inputs", "are read only by runtime: async (as OpenFunction)"))
    inputs = [
        Ref(f"spec.serving.inputs[{i}]", io.component, io.name, None, io.topic)
        for i, io in enumerate(serving.inputs if not sync else [])
    ]
    outputs = [
        Ref(
            f"spec.serving.outputs[{i}]",
            io.component,
            io.name,
            None,
            io.topic,
            io.operation,
            _strings(io.params),
        )
        for i, io in enumerate(serving.outputs)
    ]
    return Serving(
        sync=sync,
        port=DEFAULT_PORT if function.spec.port is None else function.spec.port,
        inputs=inputs,
        outputs=outputs,
        state_inputs=[],
        bindings=dict(serving.bindings),
        pubsub=dict(serving.pubsub),
        states=dict(serving.states),
        params=_strings(serving.params),
        annotations=dict(serving.annotations),
        scale=_scale_v1beta1(serving, notes),
        notes=notes,
    )


def _scale_v1beta1(serving: ServingV1beta1, notes: list[tuple[str, str]]) -> ScaleOptions | None:
    """As OpenFunction converts it: the scaledObject's replica counts win over the bounds,
    and ``serving.triggers`` are the KEDA triggers."""
    options = serving.scaleOptions
    triggers = [t.model_dump(exclude={"targetKind"}, exclude_none=True) for t in serving.triggers]
    if options is None and not triggers:
        return None
    low = options.minReplicas if options else None
    high = options.maxReplicas if options else None
    scaled = dict(options.keda.scaledObject or {}) if options and options.keda else {}
    low = scaled.pop("minReplicaCount", low)
    high = scaled.pop("maxReplicaCount", high)
    workload = scaled.pop("workloadType", None)
    if workload in ("Job", "StatefulSet"):
        field = "spec.serving.scaleOptions.keda.scaledObject.workloadType"
        notes.append((field, f"'{workload}' {NOT_YET}"))
    keda = KedaScaling(scaledObject=scaled or None, triggers=triggers or None)
    has_keda = bool(scaled or triggers)
    return ScaleOptions(minReplicas=low, maxReplicas=high, keda=keda if has_keda else None)
