"""Wire a validated catalog into running buses, functions, triggers and sources.

Start order makes at-least-once hold from the first event: buses connect, then
functions listen, then triggers subscribe (creating their consumer groups),
and only then do sources start producing. Stop runs in reverse: sources stop,
triggers drain what they hold, functions and buses close.

Roles start and stop one by one too (:meth:`Runtime.start_roles`,
:meth:`Runtime.stop_roles`, in the same orders), which is how a reload
(:mod:`events.app.reload`) changes some roles and leaves the rest running.

Every consumer (a trigger's input, an async function) is watched for stalls
(:mod:`events.bus.stall`): one that has not moved for ``stall_after`` seconds while
work waits on the broker makes ``/readyz`` answer 503 with the reason, and the
backlog it reads is the gauge ``fnevents_backlog{topic,group}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

from aiohttp import web

from events.app.catalog import Catalog
from events.app.checks import binding_settings, check_remote_sinks
from events.app.function_states import FunctionStates
from events.app.ofn_report import check_hostable
from events.app.ops import OpsServer
from events.app.plans import bus_plan, dead_letter_topic, group_of, plan_trigger, topic_for
from events.app.roles import Roles
from events.app.state_stores import condition_state
from events.brokers.registry import PARTS, bus_settings, create_bus
from events.bus.contract import EventBus
from events.bus.resilient import keep_running
from events.bus.stall import DEFAULT_STALL_AFTER, StallWatch
from events.delivery.outlets import OutletPlan, build_outlet
from events.delivery.sinks import SinkClient
from events.errors import BackendNotAvailable
from events.functions.address import remote_url
from events.functions.context import Send
from events.functions.frameworks import ensure_functions_framework, invoker_for
from events.functions.http import FunctionServer
from events.functions.loader import load_target
from events.functions.outputs import BindingTarget, Outputs
from events.functions.topic import TopicFunction
from events.manifests.common import SinkSpec
from events.manifests.extensions import DEFAULT_DELIVERY
from events.manifests.loader import Loaded
from events.observability import tracing
from events.observability.console import Console
from events.observability.metrics import Metrics
from events.observability.recent import RecentEvents
from sources.contract import SourceIdentity
from sources.registry import make_source, source_class
from triggers.runner import TriggerRunner
from triggers.subscriber import DeliveryContext, Subscriber

#: A role: (kind, namespace, name) of an EventSource, Trigger or Function.
RoleKey = tuple[str, str, str]


class Runtime:
    def __init__(
        self,
        catalog: Catalog,
        console: Console,
        metrics: Metrics | None = None,
        ops_host: str = "127.0.0.1",
        ops_port: int | None = None,
        roles: Roles | None = None,
        stall_after: float = DEFAULT_STALL_AFTER,
        recent: RecentEvents | None = None,
        ops_routes: Sequence[Callable[[web.Application], None]] = (),
    ) -> None:
        """``recent`` and ``ops_routes`` are the web console's (``run --console``): the
        recent events the roles record into, and its routes on the ops server."""
        self.catalog = catalog
        self.recent = recent
        self.roles = roles or Roles()
        self.console = console
        self.metrics = metrics or Metrics()
        self.sinks = SinkClient()
        self.buses: dict[str, EventBus] = {}
        self.functions: dict[tuple[str, str], FunctionServer] = {}
        self.topic_functions: list[TopicFunction] = []
        self.outputs = Outputs(console)
        self.function_states = FunctionStates(catalog)
        self.triggers: list[TriggerRunner] = []
        self._sources: list[asyncio.Task[None]] = []
        self._source_tasks: dict[tuple[str, str], list[asyncio.Task[None]]] = {}
        #: The roles started and not stopped since.
        self.running: set[RoleKey] = set()
        self._ops = (
            OpsServer(self.metrics, self.not_ready, ops_host, ops_port, ops_routes)
            if ops_port is not None
            else None
        )
        self.ready = False
        #: Where the ops server listens, once started (``http://host:port``).
        self.ops_url: str | None = None
        #: None with ``stall_after`` 0: no stall report, no backlog gauge.
        self.stalls = (
            StallWatch(stall_after, console.say, console.warn, self._record_backlog)
            if stall_after > 0
            else None
        )

    def not_ready(self) -> str | None:
        """Why ``/readyz`` says 503 (None when ready): starting or stopping, or a stall."""
        if not self.ready:
            return "starting or stopping"
        stalls = self.stalls.stalls() if self.stalls is not None else []
        if stalls:
            return "stalled: " + "; ".join(stalls)
        return None

    def _record_backlog(self, topic: str, group: str, backlog: int) -> None:
        self.metrics.backlog.labels(topic, group).set(backlog)

    async def start(self) -> None:
        self._preflight()
        for warning in self.catalog.warnings:
            self.console.warn(warning)
        if self._ops is not None:
            self.ops_url = await self._ops.start()
            self.console.say(f"health and metrics on {self.ops_url}/metrics")
        await self.start_roles(self.selection())
        if self.stalls is not None:
            self.stalls.start()
        self.ready = True

    def selected(self, kind: str) -> list[Loaded]:
        """The resources of ``kind`` this process runs (``--only``, else all)."""
        return [item for item in self.catalog.of_kind(kind) if item in self.roles]

    def selection(self) -> list[Loaded]:
        """Every role this process runs: Functions, Triggers, EventSources."""
        return selection(self.catalog, self.roles)

    def _preflight(self) -> None:
        preflight(self.catalog, self.roles)

    async def start_roles(self, items: list[Loaded]) -> None:
        """Start the roles ``items`` (of :attr:`catalog`) in start order: the buses they use
        (one already open is shared), then functions, triggers, sources."""
        await self._start_buses(items)
        await self._start_functions(_of_kind(items, "Function"))
        await self._start_triggers(_of_kind(items, "Trigger"))
        self._start_sources(_of_kind(items, "EventSource"))

    async def stop_roles(self, roles: Iterable[RoleKey], drain_timeout: float = 10.0) -> None:
        """Stop the running ``roles`` as :meth:`stop` does (sources, then triggers and async
        functions drain what they hold, then function servers); buses stay open."""
        keys = set(roles)
        tasks = [t for key in keys for t in self._source_tasks.pop(key[1:], [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sources = [t for t in self._sources if t not in tasks]
        triggers = [t for t in self.triggers if ("Trigger", *t.name.split("/", 1)) in keys]
        self.triggers = [t for t in self.triggers if t not in triggers]
        await asyncio.gather(*(t.stop(drain_timeout) for t in triggers))
        consumers = [
            f for f in self.topic_functions if ("Function", *f.label.split("/", 1)) in keys
        ]
        self.topic_functions = [f for f in self.topic_functions if f not in consumers]
        await asyncio.gather(*(f.stop(drain_timeout) for f in consumers))
        servers = [self.functions.pop(key[1:], None) for key in keys if key[0] == "Function"]
        await asyncio.gather(*(server.stop() for server in servers if server is not None))
        self.running -= keys

    async def stop(self, drain_timeout: float = 10.0) -> None:
        self.ready = False
        if self.stalls is not None:
            await self.stalls.stop()
        for task in self._sources:
            task.cancel()
        await asyncio.gather(*self._sources, return_exceptions=True)
        await asyncio.gather(*(t.stop(drain_timeout) for t in self.triggers))
        await asyncio.gather(*(f.stop(drain_timeout) for f in self.topic_functions))
        await asyncio.gather(*(f.stop() for f in self.functions.values()))
        await self.outputs.close()
        await self.function_states.close()
        await self.sinks.close()
        await asyncio.gather(*(b.close() for b in self.buses.values()))
        if self._ops is not None:
            await self._ops.stop()

    def bus_for(self, item: Loaded, name: str) -> EventBus:
        return self.buses[bus_plan(self.catalog, item.namespace, name).key]

    async def _start_buses(self, items: list[Loaded]) -> None:
        for item, name in _bus_users(items):
            plan = bus_plan(self.catalog, item.namespace, name)
            if plan.key in self.buses:
                continue
            bus = create_bus(plan)
            if tracing.enabled:  # every publish on this bus becomes a send span
                tracing.trace_publish(bus)
            if plan.notice:
                self.console.say(f"note: {plan.notice}")
            await keep_running(
                f"bus {plan.describe()}", bus.start, self.console, only_retriable=True
            )
            self.buses[plan.key] = bus
            self.console.say(f"bus: {bus.describe()} ({plan.via})")

    async def _start_functions(self, items: list[Loaded]) -> None:
        for item in items:
            spec = item.resource.spec
            ensure_functions_framework()  # `import functions_framework` in the code works
            handler = load_target(
                spec.source, spec.target, Path(item.origin.file).parent, item.name, spec.env
            )
            outputs = await self._senders(item)
            states = await self.function_states.stores(item)
            invoke = invoker_for(
                spec.framework, handler, item.namespace, item.name, outputs, states
            )
            if spec.input is None:
                server = FunctionServer(item.name, invoke, spec.host, spec.port, item.namespace)
                self.functions[(item.namespace, item.name)] = server
                where = f"listening on {await server.start()}"
            else:
                function = TopicFunction(
                    item.namespace,
                    item.name,
                    invoke,
                    self.bus_for(item, spec.input.eventBus),
                    spec.input.topic,
                    group_of(item),
                    dead_letter_topic(item),
                    self.console,
                    spec.concurrency,
                    spec.maxDeliveries,
                    watch=self.stalls,
                )
                await function.start()
                self.topic_functions.append(function)
                where = f"consuming topic {spec.input.topic}"
            self.running.add(role_key(item))
            self.console.say(f"function {item.namespace}/{item.name} {where}")

    async def _senders(self, function: Loaded) -> dict[str, Send]:
        """One sender per output the Function declares; binding clients start here."""
        senders: dict[str, Send] = {}
        for name, ref in function.resource.spec.outputs.items():
            if ref.component is None:
                senders[name] = self.outputs.to_bus(self.bus_for(function, ref.bus), ref.topic)
                continue
            component = self.catalog.find_component(function.namespace, ref.component)
            assert component is not None, "checked when the manifests loaded"
            broker, part = PARTS[component.resource.spec.type]
            target = BindingTarget(
                key=(component.namespace, component.name),
                name=component.name,
                build=broker.load(part.target),
                settings=binding_settings(component, self.catalog),
            )
            senders[name] = await self.outputs.to_binding(target, ref.topic)
        return senders

    def sink_url(self, sink: SinkSpec | None, namespace: str) -> str | None:
        if sink is None:
            return None
        if sink.uri:
            return sink.uri
        assert sink.ref is not None
        key = (sink.ref.namespace or namespace, sink.ref.name)
        if key in self.functions:
            return self.functions[key].url
        function = self.catalog.find_function(sink.ref, namespace)
        assert function is not None, "checked when the manifests loaded"
        return remote_url(function)

    async def _start_triggers(self, items: list[Loaded]) -> None:
        for item in items:
            runner = self._build_trigger(item)
            # a store that cannot be reached is said now and waited for, like a bus;
            # one that refuses the credentials stops the start with that reason
            label = f"trigger {runner.name}: condition store {runner.state.describe()}"
            await keep_running(label, runner.state.check, self.console, only_retriable=True)
            await runner.start()
            self.triggers.append(runner)
            self.running.add(role_key(item))
            targets = ", ".join(_describe(s) for s in runner.subscribers)
            self.console.say(
                f"trigger {runner.name}: inputs {', '.join(runner.inputs.values())} -> {targets}"
            )

    def _build_trigger(self, item: Loaded) -> TriggerRunner:
        spec, ns = item.resource.spec, item.namespace
        plan = plan_trigger(item)
        subscribers = [
            Subscriber(
                trigger=plan.label,
                index=compiled.index,
                condition=compiled.condition,
                policy=sub.delivery or spec.delivery or DEFAULT_DELIVERY,
                dead_letter_topic=compiled.dead_letter_topic,
                sink_url=self.sink_url(sub.sink, ns),
                topic=sub.topic,
                dead_letter_url=self.sink_url(sub.deadLetterSink, ns),
                filter=compiled.filter,
                reply_topic=compiled.reply_topic,
                max_in_flight=sub.maxInFlight,
            )
            for sub, compiled in zip(spec.subscribers, plan.subscribers, strict=True)
        ]
        ctx = DeliveryContext(
            self.bus_for(item, spec.eventBus), self.sinks, self.metrics, self.console, self.recent
        )
        return TriggerRunner(
            plan.label,
            plan.inputs,
            subscribers,
            spec.conditionWindow,
            group=plan.group,
            ctx=ctx,
            max_deliveries=spec.maxDeliveries,
            dead_letter_topic=plan.dead_letter_topic,
            # As many messages as the largest subscriber limit, so that limit can be reached;
            # a larger window measured slower (bench/trigger_http.py: more tasks waiting).
            max_in_flight=max(sub.maxInFlight for sub in spec.subscribers),
            input_filters=plan.input_filters,
            order_by=spec.orderBy,
            state=condition_state(item, self.catalog),
            watch=self.stalls,
        )

    def _start_sources(self, items: list[Loaded]) -> None:
        for item in items:
            for kind, event, _ in item.resource.spec.events():
                source = make_source(item, kind, event)
                outlet = build_outlet(
                    self._outlet_plan(item, source.identity),
                    self.sinks,
                    self.metrics,
                    self.console,
                    self.recent,
                )
                label = f"source {source.describe()}"
                errors = self.metrics.source_errors.labels(source.identity.label)
                task = asyncio.create_task(
                    keep_running(label, partial(source.run, outlet), self.console, errors.inc),
                    name=label,
                )
                self._sources.append(task)
                self._source_tasks.setdefault(role_key(item)[1:], []).append(task)
                self.running.add(role_key(item))
                self.console.say(f"{label} started")
                for notice in source.notices():
                    self.console.warn(f"{label}: {notice}")

    def _outlet_plan(self, item: Loaded, identity: SourceIdentity) -> OutletPlan:
        spec = item.resource.spec
        return OutletPlan(
            identity=identity,
            bus=self.bus_for(item, spec.eventBus) if spec.eventBus else None,
            topic=topic_for(item.namespace, item.name, identity.event),
            dead_letter_topic=dead_letter_topic(item),
            sink_url=self.sink_url(spec.sink, item.namespace),
            dead_letter_url=self.sink_url(spec.deadLetterSink, item.namespace),
            delivery=spec.delivery or DEFAULT_DELIVERY,
        )


def selection(catalog: Catalog, roles: Roles) -> list[Loaded]:
    """The roles of ``catalog`` that ``roles`` selects: Functions, Triggers, EventSources."""
    kinds = ("Function", "Trigger", "EventSource")
    return [item for kind in kinds for item in catalog.of_kind(kind) if item in roles]


def preflight(catalog: Catalog, roles: Roles) -> None:
    """Refuse to start what cannot run, before anything is started (also before a reload
    stops anything)."""
    items = selection(catalog, roles)
    check_hostable(_of_kind(items, "Function"))
    for item in _of_kind(items, "EventSource"):
        for kind, event, _ in item.resource.spec.events():
            try:
                source_class(kind)
            except BackendNotAvailable as exc:
                message = f"{item.label} {kind} event '{event}': {exc}"
                raise BackendNotAvailable(message) from None
    for item, name in _bus_users(items):
        bus_settings(bus_plan(catalog, item.namespace, name))
    senders = _of_kind(items, "EventSource") + _of_kind(items, "Trigger")
    check_remote_sinks(senders, catalog, roles)


def _bus_users(items: list[Loaded]) -> list[tuple[Loaded, str]]:
    users = [(es, es.resource.spec.eventBus) for es in _of_kind(items, "EventSource")]
    users += [(t, t.resource.spec.eventBus) for t in _of_kind(items, "Trigger")]
    for function in _of_kind(items, "Function"):
        spec = function.resource.spec
        users += [(function, ref.bus) for ref in spec.outputs.values() if ref.bus]
        if spec.input is not None:
            users.append((function, spec.input.eventBus))
    return [(item, name) for item, name in users if name]


def _of_kind(items: list[Loaded], kind: str) -> list[Loaded]:
    return [item for item in items if item.kind == kind]


def role_key(item: Loaded) -> RoleKey:
    return (item.kind, item.namespace, item.name)


def _describe(subscriber: Subscriber) -> str:
    targets = [
        t for t in (subscriber.sink_url, subscriber.topic and f"topic {subscriber.topic}") if t
    ]
    return f"[{subscriber.condition.expression}] {' + '.join(targets)}"
