"""What ``fnevents render`` deploys, computed from the loaded catalog: one
:class:`RolePlan` per role (each EventSource, Trigger and Function), the files the pods
read, the Dapr Components and whether the shared Dapr proxy runs.

The objects (:mod:`.objects`) and the chart's values (:mod:`.values`) are both written
from these plans, so the two cannot tell different stories. The plans themselves come
from the runtime's own functions: ``plan_trigger``, ``bus_plan`` and ``group_of``
(:mod:`events.app.plans`), ``make_source`` (:mod:`sources.registry`) and the broker
packages' naming (see :mod:`.keda`).

Scaling out needs a bus that several processes share. The embedded in-memory bus lives
in one process, so rendering a role that uses it is an error naming the fix
(``--components components/redis.yaml``, or the chart's all-in-one mode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from events.app.catalog import Catalog, key_of
from events.app.plans import bus_plan, group_of, plan_trigger
from events.app.render import dapr, keda, names
from events.app.render.files import Files
from events.bus.plan import EMBEDDED, SIDECAR, BusPlan
from events.errors import FnEventsError
from events.manifests.loader import Loaded
from events.manifests.openfunction import ScaleOption
from sources.registry import make_source

ROLE_KINDS = ("EventSource", "Trigger", "Function")


class RenderError(FnEventsError, ValueError):
    """The manifests cannot run as separate Deployments as they are; says why and the fix."""


@dataclass(frozen=True)
class Options:
    namespace: str = "default"
    image: str = "ghcr.io/fnevents/fnevents:latest"
    dapr_mode: str = "auto"
    keda: bool = True


@dataclass
class RolePlan:
    """One role's Deployment and what goes with it, in the values file's terms."""

    item: Loaded
    name: str  # the object name suffix, e.g. trigger-default-telemetry
    role: str  # the --only value, e.g. trigger/default/telemetry
    replicas: int = 1
    ports: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, str]] = field(default_factory=list)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    scaled_object: dict[str, Any] | None = None  # spec without scaleTargetRef
    single_replica_reason: str | None = None

    @property
    def object_name(self) -> str:
        return names.object_name(self.name)

    @property
    def max_replicas(self) -> int:
        if self.scaled_object is not None:
            return self.scaled_object["maxReplicaCount"]
        return self.replicas


@dataclass
class Rendering:
    options: Options
    files: Files
    roles: list[RolePlan] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    dapr_proxy: bool = False
    warnings: list[str] = field(default_factory=list)


def plan_rendering(catalog: Catalog, files: Files, options: Options) -> Rendering:
    """Every role's plan; RenderError when a role is on the embedded bus."""
    items = sorted(
        (item for kind in ROLE_KINDS for item in catalog.of_kind(kind)), key=names.role_of
    )
    _refuse_embedded(items, catalog)
    rendering = Rendering(options, files, warnings=list(files.warnings))
    sidecar_buses = [b for item in items for b in _buses(item, catalog) if _on_sidecar(b)]
    mode = dapr.mode_of([bus for bus, _ in sidecar_buses], options.dapr_mode)
    rendering.dapr_proxy = bool(sidecar_buses) and mode == "proxy"
    for item in items:
        rendering.roles.append(_role(item, catalog, rendering, mode))
    rendering.components = _components(rendering, catalog, mode)
    return rendering


def _role(item: Loaded, catalog: Catalog, rendering: Rendering, mode: str) -> RolePlan:
    plan = RolePlan(item, names.role_name(item), names.role_of(item))
    plan.ports = _ports(item, rendering.files)
    bounds, scalers = _scalers(item, catalog)
    for scaler in scalers:
        rendering.warnings.extend(scaler.warnings)
    _scale(plan, bounds, scalers, rendering)
    _use_dapr(plan, item, catalog, mode, rendering.options.namespace)
    _warn_condition_state(plan, rendering)
    return plan


def _scale(
    plan: RolePlan, bounds: keda.Bounds, scalers: list[keda.Scaler], rendering: Rendering
) -> None:
    single = [s.reason for s in scalers if s.single and s.reason]
    if single:
        plan.replicas, plan.single_replica_reason = 1, "; ".join(single)
        rendering.warnings.append(f"{plan.role}: one replica: {plan.single_replica_reason}")
        return
    triggers = [s.trigger for s in scalers if s.trigger is not None]
    plan.replicas = max(bounds.min_replicas, 1)
    if triggers and rendering.options.keda:
        plan.scaled_object = keda.scaled_object_spec(bounds, triggers)
    for scaler in scalers:
        if scaler.reason:
            rendering.warnings.append(f"{plan.role}: no ScaledObject: {scaler.reason}")


def _scalers(item: Loaded, catalog: Catalog) -> tuple[keda.Bounds, list[keda.Scaler]]:
    spec, ns = item.resource.spec, item.namespace
    if item.kind == "Trigger":
        bus = bus_plan(catalog, ns, spec.eventBus)
        bounds = keda.bounds_from(_bus_option(catalog, ns, spec.eventBus))
        trigger = plan_trigger(item)
        topics = sorted(set(trigger.inputs.values()))
        return bounds, [keda.bus_scaler(bus, t, trigger.group, bounds) for t in topics]
    if item.kind == "Function":
        option = function_scale_option(spec)
        if spec.input is None:
            return keda.bounds_from(option), []
        bus = bus_plan(catalog, ns, spec.input.eventBus)
        bounds = keda.bounds_from(option or _bus_option(catalog, ns, spec.input.eventBus))
        return bounds, [keda.bus_scaler(bus, spec.input.topic, group_of(item), bounds)]
    options = [s.scaleOption for _, _, s in spec.events() if getattr(s, "scaleOption", None)]
    bounds = keda.bounds_from(options[0] if options else None)
    scalers = [
        keda.source_scaler(kind, make_source(item, kind, event), bounds)
        for kind, event, _ in spec.events()
    ]
    return bounds, scalers


def _bus_option(catalog: Catalog, namespace: str, name: str) -> ScaleOption | None:
    """OpenFunction's EventBus ``natsStreaming.scaleOption``: how its Triggers scale."""
    bus = catalog.find_bus(namespace, name)
    nats = bus.resource.spec.natsStreaming if bus is not None else None
    return nats.scaleOption if nats is not None else None


def function_scale_option(spec: Any) -> ScaleOption | None:
    """OpenFunction's Function ``scaleOptions`` (``minReplicas``, ``maxReplicas`` and
    ``keda.scaledObject``) as a ScaleOption, when the Function model carries that field."""
    options = getattr(spec, "scaleOptions", None)
    if options is None:
        return None
    data = options if isinstance(options, dict) else options.model_dump(exclude_none=True)
    keda_options = data.get("keda") or {}
    scaled = dict(keda_options.get("scaledObject") or {})
    if "minReplicas" in data:
        scaled.setdefault("minReplicaCount", data["minReplicas"])
    if "maxReplicas" in data:
        scaled.setdefault("maxReplicaCount", data["maxReplicas"])
    return ScaleOption.model_validate(scaled)


def _ports(item: Loaded, files: Files) -> list[dict[str, Any]]:
    if item.kind == "Function":
        port = files.function_ports.get((item.namespace, item.name))
        return [] if port is None else [{"name": "http", "containerPort": port}]
    if item.kind == "EventSource":
        ports = sorted({s.port for s in item.resource.spec.http.values()})
        return [
            {"name": "http" if i == 0 else f"http-{i}", "containerPort": p}
            for i, p in enumerate(ports)
        ]
    return []


def _buses(item: Loaded, catalog: Catalog) -> list[tuple[Loaded, BusPlan]]:
    """The EventBuses ``item`` uses (to read or write), with their plans."""
    spec = item.resource.spec
    wanted: list[str] = []
    if item.kind in ("EventSource", "Trigger") and spec.eventBus:
        wanted.append(spec.eventBus)
    if item.kind == "Function":
        wanted += [spec.input.eventBus] if spec.input is not None else []
        wanted += [o.bus for o in spec.outputs.values() if o.bus is not None]
    found = []
    for name in dict.fromkeys(wanted):
        bus = catalog.find_bus(item.namespace, name)
        if bus is not None:
            found.append((bus, bus_plan(catalog, item.namespace, name)))
    return found


def _on_sidecar(bus: tuple[Loaded, BusPlan]) -> bool:
    return bus[1].backend == SIDECAR


def _refuse_embedded(items: list[Loaded], catalog: Catalog) -> None:
    embedded = sorted(
        {
            names.role_of(i)
            for i in items
            for _, plan in _buses(i, catalog)
            if plan.backend == EMBEDDED
        }
    )
    if embedded:
        raise RenderError(
            f"{', '.join(embedded)} use the embedded in-memory bus, which lives inside one "
            "process, so separate Deployments would not share it: pass a broker, e.g. "
            "--components components/redis.yaml, or deploy the chart in all-in-one mode"
        )


def _use_dapr(plan: RolePlan, item: Loaded, catalog: Catalog, mode: str, namespace: str) -> None:
    sidecar = [bus for bus, p in _buses(item, catalog) if p.backend == SIDECAR]
    if not sidecar:
        return
    endpoint = dapr.grpc_endpoint(mode, namespace)
    plan.env.append({"name": "DAPR_GRPC_ENDPOINT", "value": endpoint})
    if mode == "sidecar":
        port = plan.ports[0]["containerPort"] if plan.ports else None
        plan.pod_annotations = dapr.sidecar_annotations(plan.object_name, sidecar[0], port)


def _components(rendering: Rendering, catalog: Catalog, mode: str) -> list[dict[str, Any]]:
    """The Dapr Components behind sidecar buses; in sidecar mode scoped to the app ids
    (role object names) that use them."""
    found: dict[Any, tuple[Loaded, list[str]]] = {}
    for plan in rendering.roles:
        for _, bus in _buses(plan.item, catalog):
            if bus.backend != SIDECAR:
                continue
            name = bus.metadata["pubsubName"]
            component = catalog.find_component(plan.item.namespace, name)
            if component is None:
                rendering.warnings.append(
                    f"{plan.role}: Dapr Component {name} is not among the manifests; "
                    "the cluster must already have it"
                )
                continue
            scopes = found.setdefault(key_of(component), (component, []))[1]
            if mode == "sidecar":
                scopes.append(plan.object_name)
    namespace = rendering.options.namespace
    return [dapr.component_object(c, namespace, scopes) for c, scopes in found.values()]


def _warn_condition_state(plan: RolePlan, rendering: Rendering) -> None:
    item = plan.item
    if item.kind != "Trigger" or plan.max_replicas <= 1 or item.resource.spec.conditionStore:
        return
    inputs = list(item.resource.spec.inputs)
    for subscriber in item.resource.spec.subscribers:
        used = [n for n in inputs if re.search(rf"\b{re.escape(n)}\b", subscriber.condition)]
        if len(used) > 1:
            rendering.warnings.append(
                f"{plan.role}: the condition {subscriber.condition!r} combines inputs, and "
                f"up to {plan.max_replicas} replicas would each see only the events they "
                "read: set spec.conditionStore (a state.redis Component) so they share "
                "condition state, or keep one replica"
            )
            return
