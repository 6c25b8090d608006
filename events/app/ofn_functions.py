"""OpenFunction ``core.openfunction.io`` Functions, turned into what fnevents runs.

Each OpenFunction Function becomes, in the catalog:

- a fnevents ``Function`` of the same namespace and name (so a ``sink.ref`` to the
  OpenFunction Function reaches it): sync (HTTP on ``triggers.http.port``, default
  8080) or async (consuming one bus topic), with its outputs, ``env`` (``params``),
  ``states``, ``scaleOptions`` and framework;
- a Dapr ``Component`` per inline ``bindings``/``pubsub``/``states`` entry, named as
  OpenFunction names the ones it creates, ``{function}-{bindings|pubsub|state}-{key}``
  (without its random suffix); a ``--components`` Component of that name replaces it;
- for an input binding with a matching source (``events.app.ofn_inputs``): an
  ``EventSource`` named as the Function, one event per input, on the EventBus
  ``default`` (the embedded bus when there is none); the function consumes its topic;
- for a pubsub input or output: an ``EventBus`` named as the Component, so the topic
  is a topic on a bus whose Component is that pubsub (what a Dapr app shares).

Every field fnevents does not act on is a warning naming it and why
(``events.app.ofn_mapping``); where the code is and how to call it is
``events.app.ofn_hosting``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events.app.ofn_hosting import Hosting, locate
from events.app.ofn_inputs import BINDING_INPUTS, input_event
from events.app.ofn_mapping import Ref, Serving, read_serving
from events.app.ofn_report import OpenFunctionView, mapped_function
from events.app.plans import topic_for
from events.brokers.registry import BUS_TYPES, PARTS
from events.errors import ManifestError
from events.manifests import dapr, openfunction
from events.manifests.dapr import ComponentSpec
from events.manifests.function import DEFAULT_BUS, FunctionSpec, OutputRef, TopicRef
from events.manifests.loader import Loaded
from events.manifests.ofn_function import FunctionV1beta1, FunctionV1beta2

ENABLE_DAPR = "openfunction.io/enable-dapr"
DAPR_SERVICE_MODE = "openfunction.io/dapr-service-mode"
#: Dapr's names before its MQTT components became ``*.mqtt3``.
LEGACY_TYPES = {"pubsub.mqtt": "pubsub.mqtt3", "bindings.mqtt": "bindings.mqtt3"}
OUTPUT_BINDINGS = tuple(sorted(t for t in PARTS if t.startswith("bindings.")))
STATE_TYPES = ("state.redis",)
_PREFIX = {"bindings": "bindings", "pubsub": "pubsub", "states": "state"}


def is_openfunction(item: Loaded) -> bool:
    return isinstance(item.resource, FunctionV1beta1 | FunctionV1beta2)


def expand_functions(
    loaded: list[Loaded], overrides: list[Loaded], sources: Mapping[str, str]
) -> tuple[list[Loaded], list[str], list[ManifestError]]:
    """``loaded`` with each OpenFunction Function replaced by what it maps to; the
    warnings, and the errors (each naming the Function's file and field)."""
    functions = [item for item in loaded if is_openfunction(item)]
    if not functions and not sources:
        return loaded, [], []
    components = {(c.namespace, c.name): c for c in [*loaded, *overrides] if c.kind == "Component"}
    buses = {(b.namespace, b.name) for b in loaded if b.kind in ("EventBus", "ClusterEventBus")}
    cluster_buses = {b.name for b in loaded if b.kind == "ClusterEventBus"}
    out = [item for item in loaded if not is_openfunction(item)]
    warnings: list[str] = []
    errors: list[ManifestError] = _unknown_sources(functions, sources)
    for item in functions:
        expansion = _Expansion(item, components, buses, cluster_buses, sources)
        expansion.run()
        out += expansion.items
        warnings += [f"{item.label} ({item.origin}): {w}" for w in expansion.warnings]
        errors += expansion.errors
    return out, warnings, errors


def _unknown_sources(functions: list[Loaded], sources: Mapping[str, str]) -> list[ManifestError]:
    names = {f.name for f in functions} | {f"{f.namespace}/{f.name}" for f in functions}
    return [
        ManifestError(
            f"--source {name}={path}: no core.openfunction.io Function named '{name}' in the "
            f"manifests; OpenFunction Functions there: {sorted(names) or 'none'}"
        )
        for name, path in sources.items()
        if name not in names
    ]


@dataclass
class _Resolved:
    """A Dapr component a Function names: the Component fnevents uses and its spec."""

    component: str
    spec: ComponentSpec


class _Expansion:
    def __init__(
        self,
        item: Loaded,
        components: dict[tuple[str, str], Loaded],
        buses: set[tuple[str, str]],
        cluster_buses: set[str],
        sources: Mapping[str, str],
    ) -> None:
        self.item, self.ns, self.name = item, item.namespace, item.name
        self.components, self.buses, self.cluster_buses = components, buses, cluster_buses
        self.sources = sources
        self.items: list[Loaded] = []
        self.warnings: list[str] = []
        self.errors: list[ManifestError] = []
        self.inline: dict[str, _Resolved] = {}
        self.events: dict[str, dict[str, Any]] = {}  # EventSource kind -> event -> settings

    def run(self) -> None:
        serving = read_serving(self.item.resource)
        self.warnings += [f"{field} {why}" for field, why in serving.notes]
        self._inline_components(serving)
        source = self.sources.get(f"{self.ns}/{self.name}") or self.sources.get(self.name)
        hosting = locate(self.item, source)
        self.warnings += hosting.notes
        if hosting.error:
            self.errors.append(self.item.error(hosting.error, hosting.field))
            return
        spec = self._spec(serving, hosting)
        if self.events:
            self._add(openfunction.EventSource, "EventSource", self.name, self._eventsource())
        if spec is None:
            return
        view = OpenFunctionView(
            api_version=self.item.resource.apiVersion,
            unhostable=hosting.unhostable,
            annotations=_dapr_annotations(serving),
            serving=serving,
            components={k: r.component for k, r in self.inline.items()},
        )
        self.items.append(Loaded(mapped_function(self.item.resource, spec, view), self.item.origin))

    # -- the parts ---------------------------------------------------------------------

    def _spec(self, serving: Serving, hosting: Hosting) -> FunctionSpec | None:
        fields: dict[str, Any] = {
            "source": hosting.source,
            "target": hosting.target,
            "framework": hosting.framework,
            "port": serving.port,
            "env": serving.params,
            "states": self._states(serving),
            "outputs": self._outputs(serving),
            "scaleOptions": serving.scale,
        }
        if not serving.sync:
            fields["input"] = self._input(serving)
            fields["port"] = 0
        if self.errors:
            return None
        return FunctionSpec.model_validate(fields)

    def _inline_components(self, serving: Serving) -> None:
        groups = {"bindings": serving.bindings, "pubsub": serving.pubsub, "states": serving.states}
        for group, entries in groups.items():
            for key, spec in entries.items():
                if spec is None:  # a state naming an existing Component
                    continue
                name = f"{self.name}-{_PREFIX[group]}-{key}"
                spec = self._modern(spec, f"spec.serving.{group}.{key}.type")
                override = self._component(name)
                if override is None:
                    self._add(dapr.Component, "Component", name, {"spec": _dump(spec)})
                else:
                    spec = override.resource.spec
                self.inline[key] = _Resolved(name, spec)

    def _modern(self, spec: ComponentSpec, field: str) -> ComponentSpec:
        modern = LEGACY_TYPES.get(spec.type)
        if modern is None:
            return spec
        self.warnings.append(f"{field} '{spec.type}' is read as '{modern}', its current name")
        return spec.model_copy(update={"type": modern})

    def _resolve(self, ref: Ref) -> _Resolved | None:
        found = self.inline.get(ref.name)
        if found is None:
            component = self._component(ref.name)
            if component is not None:
                spec = self._modern(component.resource.spec, f"{ref.field}.name")
                found = _Resolved(component.name, spec)
        if found is None:
            self.errors.append(
                self.item.error(
                    f"no Dapr component '{ref.name}': define it under spec.serving.bindings, "
                    "pubsub or states, or load a Component of that name (-f or --components)",
                    f"{ref.field}.name",
                )
            )
        return found

    def _component(self, name: str) -> Loaded | None:
        return self.components.get((self.ns, name)) or self.components.get(("default", name))

    def _input(self, serving: Serving) -> TopicRef | None:
        for extra in serving.inputs[1:]:
            self.errors.append(
                self.item.error(
                    "a Function with more than one Dapr trigger is not supported yet: fnevents "
                    "hosts a function from one input topic (a Trigger with several inputs and "
                    "one topic subscriber can merge them)",
                    extra.field,
                )
            )
        ref = serving.inputs[0]
        resolved = self._resolve(ref)
        if resolved is None:
            return None
        kind = resolved.spec.type
        if kind.startswith("pubsub."):
            return self._pubsub_topic(ref, resolved, "input")
        if kind not in BINDING_INPUTS:
            self.errors.append(self.item.error(_no_source(kind), ref.field))
            return None
        return self._binding_input(ref, resolved)

    def _binding_input(self, ref: Ref, resolved: _Resolved) -> TopicRef | None:
        metadata, secret = _values(resolved.spec)
        if secret:
            self.errors.append(
                self.item.error(
                    f"metadata {secret} of the input binding '{ref.name}' is a secretKeyRef, "
                    "which an input binding cannot use yet: give the value, or use an "
                    "EventSource",
                    ref.field,
                )
            )
            return None
        try:
            event = input_event(resolved.spec.type, metadata)
        except ValueError as exc:
            self.errors.append(self.item.error(str(exc), ref.field))
            return None
        if event.unused:
            self.warnings.append(
                f"{ref.field}: metadata {', '.join(event.unused)} of '{ref.name}' "
                f"({resolved.spec.type}) has no counterpart in fnevents' {event.kind} source "
                "and is not used"
            )
        self.events.setdefault(event.kind, {})[ref.alias] = event.settings
        self._default_bus()
        return TopicRef(topic=topic_for(self.ns, self.name, ref.alias), eventBus=DEFAULT_BUS)

    def _pubsub_topic(self, ref: Ref, resolved: _Resolved, role: str) -> TopicRef | None:
        if resolved.spec.type not in BUS_TYPES:
            self.errors.append(
                self.item.error(
                    f"pubsub type '{resolved.spec.type}' is not one fnevents' bus supports "
                    f"({', '.join(BUS_TYPES)})",
                    ref.field,
                )
            )
            return None
        if not ref.topic:
            self.errors.append(
                self.item.error(f"a pubsub {role} needs 'topic'", f"{ref.field}.topic")
            )
            return None
        bus = resolved.component
        if (self.ns, bus) not in self.buses and bus not in self.cluster_buses:
            self._add(openfunction.EventBus, "EventBus", bus, {"spec": {"component": bus}})
            self.buses.add((self.ns, bus))
        return TopicRef(topic=ref.topic, eventBus=bus)

    def _default_bus(self) -> None:
        if (self.ns, DEFAULT_BUS) in self.buses or DEFAULT_BUS in self.cluster_buses:
            return
        self._add(openfunction.EventBus, "EventBus", DEFAULT_BUS, {"spec": {}})
        self.buses.add((self.ns, DEFAULT_BUS))
        self.warnings.append(
            "its input binding feeds EventBus 'default', which the manifests do not define: "
            "using the embedded in-memory bus (define EventBus 'default' with a Component "
            "to use a broker)"
        )

    def _outputs(self, serving: Serving) -> dict[str, OutputRef]:
        outputs: dict[str, OutputRef] = {}
        for ref in serving.outputs:
            resolved = self._resolve(ref)
            if resolved is None:
                continue
            kind = resolved.spec.type
            if kind.startswith("pubsub."):
                topic = self._pubsub_topic(ref, resolved, "output")
                if topic is not None:
                    outputs[ref.alias] = OutputRef(topic=topic.topic, eventBus=topic.eventBus)
            elif kind in OUTPUT_BINDINGS:
                if ref.operation not in (None, "", "create"):
                    self.errors.append(
                        self.item.error(
                            f"operation '{ref.operation}': the {kind} output binding does "
                            "'create' only",
                            f"{ref.field}.operation",
                        )
                    )
                    continue
                outputs[ref.alias] = OutputRef(
                    component=resolved.component, operation=ref.operation, metadata=ref.metadata
                )
                if ref.metadata:
                    self.warnings.append(
                        f"{ref.field}.metadata {sorted(ref.metadata)}: recorded and shown; "
                        f"fnevents' {kind} binding does not read per-output metadata yet"
                    )
            else:
                self.errors.append(
                    self.item.error(
                        f"'{ref.name}' is a {kind} Component; fnevents sends to output "
                        f"bindings {', '.join(OUTPUT_BINDINGS)} and to pubsub topics",
                        ref.field,
                    )
                )
        return outputs

    def _states(self, serving: Serving) -> dict[str, str]:
        refs = [(name, f"spec.serving.states.{name}") for name in serving.states]
        refs += [(r.name, r.field) for r in serving.state_inputs]
        states: dict[str, str] = {}
        for name, field in refs:
            resolved = self._resolve(Ref(field, name, name))
            if resolved is None:
                continue
            if resolved.spec.type not in STATE_TYPES:
                self.errors.append(
                    self.item.error(
                        f"state store type '{resolved.spec.type}' is not supported: "
                        f"fnevents' state API (context.state) runs on {', '.join(STATE_TYPES)}",
                        field,
                    )
                )
                continue
            states[name] = resolved.component
        return states

    def _eventsource(self) -> dict[str, Any]:
        return {"spec": {"eventBus": DEFAULT_BUS, **self.events}}

    def _add(self, model: Any, kind: str, name: str, body: dict[str, Any]) -> None:
        api = {"Component": "dapr.io/v1alpha1"}.get(kind, openfunction.API_VERSION)
        document = {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": name, "namespace": self.ns},
            **body,
        }
        try:
            self.items.append(Loaded(model.model_validate(document), self.item.origin))
        except ValueError as exc:
            self.errors.append(self.item.error(f"the {kind} '{name}' it maps to: {exc}"))


def _values(spec: ComponentSpec) -> tuple[dict[str, str], list[str]]:
    values = {m.name: "" if m.value is None else str(m.value) for m in spec.metadata}
    secrets = [m.name for m in spec.metadata if m.secretKeyRef is not None]
    return values, secrets


def _dump(spec: ComponentSpec) -> dict[str, Any]:
    return spec.model_dump(exclude_none=True)


def _no_source(kind: str) -> str:
    inputs = ", ".join(sorted(BINDING_INPUTS))
    return (
        f"a {kind} Component cannot be an input here: fnevents reads input bindings "
        f"{inputs} (through its sources) and pubsub topics on {', '.join(BUS_TYPES)}"
    )


def _dapr_annotations(serving: Serving) -> dict[str, str]:
    """The two OpenFunction annotations, with OpenFunction's defaults when unset."""
    uses_dapr = bool(serving.inputs or serving.outputs or serving.states)
    enabled = serving.annotations.get(ENABLE_DAPR, "true" if uses_dapr else "false")
    return {
        ENABLE_DAPR: "false" if enabled == "false" else "true",
        DAPR_SERVICE_MODE: serving.annotations.get(DAPR_SERVICE_MODE, "standalone"),
    }
