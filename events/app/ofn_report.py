"""The fnevents Function an OpenFunction Function became, and what ``validate`` says of it.

The mapped Function keeps a view of where it came from (:class:`OpenFunctionView`),
so ``validate`` can show, per OpenFunction Function: sync or async, its inputs and
outputs, its inline Dapr components, the KEDA settings, the two Dapr annotations, and
whether it can run here; and ``run`` can refuse one that cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import PrivateAttr

from events.app.ofn_mapping import Serving
from events.errors import FnEventsError
from events.manifests.function import API_VERSION, Function, FunctionSpec
from events.manifests.loader import Loaded


class NotHostable(FnEventsError, ValueError):
    """An OpenFunction Function whose code fnevents cannot run (not Python, or not local)."""


@dataclass(frozen=True)
class OpenFunctionView:
    api_version: str
    unhostable: str | None
    annotations: dict[str, str]  # enable-dapr and dapr-service-mode, defaults applied
    serving: Serving
    components: dict[str, str]  # inline key -> the Component it became


class MappedFunction(Function):
    """A fnevents Function read from an OpenFunction one."""

    _view: OpenFunctionView | None = PrivateAttr(default=None)


def mapped_function(original: Any, spec: FunctionSpec, view: OpenFunctionView) -> MappedFunction:
    function = MappedFunction.model_validate(
        {"apiVersion": API_VERSION, "kind": "Function", "metadata": original.metadata, "spec": spec}
    )
    function._view = view
    return function


def view_of(item: Loaded) -> OpenFunctionView | None:
    resource = item.resource
    return resource._view if isinstance(resource, MappedFunction) else None


def check_hostable(items: Iterable[Loaded]) -> None:
    """Raise NotHostable for the first Function among ``items`` fnevents cannot run."""
    for item in items:
        view = view_of(item) if item.kind == "Function" else None
        if view is not None and view.unhostable:
            raise NotHostable(f"{item.label} ({item.origin}): {view.unhostable}")


def describe(item: Loaded) -> Iterator[str]:
    """What an OpenFunction Function maps to, for ``validate``."""
    view = view_of(item)
    if view is None:
        return
    spec, serving = item.resource.spec, view.serving
    yield f"from {view.api_version} Function"
    if view.unhostable:
        yield view.unhostable
    else:
        yield f"code {spec.source}:{spec.target} (framework {spec.framework})"
    if serving.sync:
        yield f"sync: served over HTTP on port {serving.port}"
    elif spec.input is not None:
        first = serving.inputs[0]
        yield (
            f"async: input '{first.alias}' ({first.name}) <- topic {spec.input.topic} "
            f"on EventBus {spec.input.eventBus}"
        )
    for name, ref in spec.outputs.items():
        yield f"output '{name}' -> {_target(ref)}"
    for key, component in view.components.items():
        yield f"component '{key}' -> Component {component}"
    for name, component in spec.states.items():
        yield f"state '{name}' -> Component {component} (context.state)"
    if spec.env:
        yield f"env (serving.params): {', '.join(sorted(spec.env))}"
    yield from _scale(spec)
    yield ", ".join(f"{k}: {v}" for k, v in view.annotations.items()) + (
        " (recorded; fnevents reaches the brokers directly, without Dapr)"
    )


def _target(ref: Any) -> str:
    if ref.component is None:
        return f"topic {ref.topic} on EventBus {ref.bus}"
    extra = f", operation {ref.operation}" if ref.operation else ""
    extra += f", metadata {dict(sorted(ref.metadata.items()))}" if ref.metadata else ""
    return f"binding Component {ref.component}{extra}"


def _scale(spec: FunctionSpec) -> Iterator[str]:
    scale = spec.scaleOptions
    if scale is None:
        return
    yield f"replicas: min {scale.minReplicas}, max {scale.maxReplicas}"
    if scale.keda is not None:
        if scale.keda.scaledObject:
            yield f"KEDA scaledObject: {scale.keda.scaledObject}"
        for trigger in scale.keda.triggers or []:
            yield f"KEDA trigger {trigger.get('type')}: {trigger.get('metadata', {})}"
