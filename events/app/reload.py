"""Reload without restart: ``fnevents run`` applies changed manifests while it runs.

A reload is asked for by SIGHUP, or by the manifest files changing (the ``-f`` and
``--components`` paths; ``--no-reload`` turns the watch off, SIGHUP still works).

Watching: the watcher polls, every :data:`POLL_SECONDS`, a digest of every manifest
file's path and bytes (the same files the loader reads). Content, not file events or
mtimes, because of how a Kubernetes ConfigMap volume updates: the kubelet writes a new
timestamped directory and swaps the ``..data`` symlink to it, so the paths users name
(``app.yaml -> ..data/app.yaml``) are symlinks whose own inode and mtime never change;
a watch on those paths misses the update, and one on the directory sees a burst of
events on hidden names. Hashing what the loader would read sees every kind of change
(an editor's rename-over, an in-place write, the symlink swap, a file added to a
directory), needs no dependency (``watchfiles`` would be one, and would still need the
content check), and costs reading a few small files a second. A change is applied once
two reads :data:`SETTLE_SECONDS` apart agree, so a half-written file is not loaded.

A reload:

1. loads and checks the manifests exactly as ``run`` does before it starts (the ``--only``
   selection re-applied, the same preflight). With any error nothing is stopped: every
   error is printed as ``validate`` prints it, then one line saying the old configuration
   keeps running;
2. compares each role (EventSource, Trigger, Function) by its :func:`footprint`: its own
   resource and everything it is built from (the EventBus, its Component and that
   Component's resolved metadata, so a Secret it uses too; a conditionStore or output
   binding Component likewise; a sink Function's address, or the whole Function when it
   runs in this process, since a restart moves it);
3. stops what was removed or changed, as a graceful stop does: sources first, then
   triggers and async functions drain (each event is acked only after its delivery, and
   what a consumer still holds goes back to its group, where its successor finds it);
4. closes the buses nothing uses any more (or whose settings changed), after their users;
5. starts what was added or changed, in start order (a bus already open is reused); a role
   that fails to start is reported and is not running: the next reload tries it again;
6. prints one line: what started, stopped and restarted, and how many were unchanged.

Everything else keeps running untouched, and so do the ops server and the metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from events.app.catalog import Catalog
from events.app.load import load_catalog
from events.app.plans import bus_plan
from events.app.roles import ROLE_KINDS, Roles
from events.app.runtime import RoleKey, Runtime, preflight, role_key, selection
from events.app.secrets import resolve_component_metadata
from events.errors import FnEventsError, ManifestErrors
from events.manifests.common import SinkSpec
from events.manifests.loader import Loaded, manifest_files

#: How often the watcher reads the manifest files, in seconds.
POLL_SECONDS = 1.0
#: How long a change must hold still before it is applied, in seconds.
SETTLE_SECONDS = 0.2

_ROLE_NAMES = {kind: role for role, kind in ROLE_KINDS.items()}


# -- what changed (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class RoleDiff:
    """Roles of two configurations, by what a reload does with them."""

    added: tuple[RoleKey, ...] = ()
    removed: tuple[RoleKey, ...] = ()
    changed: tuple[RoleKey, ...] = ()
    unchanged: tuple[RoleKey, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        """``started trigger/default/b; restarted ...; 2 unchanged``."""
        parts = [
            f"{verb} {', '.join(role_label(key) for key in keys)}"
            for verb, keys in (
                ("started", self.added),
                ("stopped", self.removed),
                ("restarted", self.changed),
            )
            if keys
        ]
        return "; ".join([*parts, f"{len(self.unchanged)} unchanged"])


def diff_roles(running: Mapping[RoleKey, str], wanted: Mapping[RoleKey, str]) -> RoleDiff:
    """Compare footprints (role -> :func:`footprint`) of what runs and what should."""
    return RoleDiff(
        added=tuple(sorted(set(wanted) - set(running))),
        removed=tuple(sorted(set(running) - set(wanted))),
        changed=tuple(sorted(k for k in wanted if k in running and running[k] != wanted[k])),
        unchanged=tuple(sorted(k for k in wanted if running.get(k) == wanted[k])),
    )


def role_label(key: RoleKey) -> str:
    """``trigger/default/t1``: the form ``--only`` accepts."""
    kind, namespace, name = key
    return f"{_ROLE_NAMES[kind]}/{namespace}/{name}"


def footprints(catalog: Catalog, roles: Roles) -> dict[RoleKey, str]:
    """The footprint of every role ``roles`` selects in ``catalog``."""
    return {role_key(item): footprint(catalog, roles, item) for item in selection(catalog, roles)}


def footprint(catalog: Catalog, roles: Roles, item: Loaded) -> str:
    """A digest of everything the running ``item`` is built from: equal footprints, equal
    roles. (A digest, not the values: resolved metadata holds secrets.)"""
    spec, namespace = item.resource.spec, item.namespace
    parts: dict[str, Any] = {"resource": _dump(item)}
    if item.kind == "Function":
        parts["directory"] = str(Path(item.origin.file).parent)  # a relative spec.source
    parts["buses"] = {name: bus_identity(catalog, namespace, name) for name in _buses(item)}
    parts["sinks"] = [_sink(catalog, roles, sink, namespace) for sink in _sinks(item)]
    components = [ref.component for ref in getattr(spec, "outputs", {}).values()]
    components.append(getattr(spec, "conditionStore", None))
    parts["components"] = {
        name: _component(catalog, namespace, name) for name in components if name
    }
    return _digest(parts)


def bus_identities(catalog: Catalog, roles: Roles) -> dict[str, str]:
    """Plan key -> :func:`bus_identity` of every bus the selected roles use."""
    identities = {}
    for item in selection(catalog, roles):
        for name in _buses(item):
            identities[bus_plan(catalog, item.namespace, name).key] = bus_identity(
                catalog, item.namespace, name
            )
    return identities


def bus_identity(catalog: Catalog, namespace: str, name: str) -> str:
    """A digest of what a bus instance is built from: an open bus with the same identity
    can be reused."""
    plan = bus_plan(catalog, namespace, name)
    bus = catalog.find_bus(namespace, name)
    assert bus is not None, "bus_plan found it"
    return _digest([plan.key, plan.backend, dict(plan.metadata), _dump(bus)])


def _buses(item: Loaded) -> list[str]:
    spec = item.resource.spec
    if item.kind != "Function":
        return [spec.eventBus] if spec.eventBus else []
    names = [ref.bus for ref in spec.outputs.values() if ref.bus]
    if spec.input is not None:
        names.append(spec.input.eventBus)
    return sorted(set(names))


def _sinks(item: Loaded) -> list[SinkSpec | None]:
    spec = item.resource.spec
    if item.kind == "EventSource":
        return [spec.sink, spec.deadLetterSink]
    if item.kind == "Trigger":
        return [s for sub in spec.subscribers for s in (sub.sink, sub.deadLetterSink)]
    return []


def _sink(catalog: Catalog, roles: Roles, sink: SinkSpec | None, namespace: str) -> Any:
    if sink is None or sink.uri or sink.ref is None:
        return sink.uri if sink is not None else None
    function = catalog.find_function(sink.ref, namespace)
    if function is None:
        return None  # refused when the manifests loaded
    if function in roles:  # served here: its restart moves it, so it restarts its senders
        return footprint(catalog, roles, function)
    spec = function.resource.spec
    return [spec.url, spec.host, spec.port]


def _component(catalog: Catalog, namespace: str, name: str) -> Any:
    component = catalog.find_component(namespace, name)
    if component is None:
        return None  # refused when the manifests loaded
    return [_dump(component), resolve_component_metadata(component, catalog)]


def _dump(item: Loaded) -> Any:
    return item.resource.model_dump(mode="json")


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot(paths: Sequence[str]) -> str:
    """A digest of the manifest files under ``paths`` (names and bytes, through symlinks),
    and of what cannot be read: it changes whenever what the loader reads would."""
    files, errors = manifest_files(paths)
    digest = hashlib.sha256(repr([str(e) for e in errors]).encode())
    for file in files:
        digest.update(str(file).encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError as exc:
            digest.update(str(exc).encode())
        digest.update(b"\0")
    return digest.hexdigest()


# -- applying it ----------------------------------------------------------------------


class Reloader:
    """Reloads ``runtime`` on :meth:`request` and, with ``watch``, when the files change.

    Use as ``async with reloader:`` once the runtime has started; leaving stops the watch
    and any reload under way (a reload stopping roles finishes their drain first).
    Reloads run one at a time; requests made meanwhile are served together after it.
    """

    def __init__(
        self,
        runtime: Runtime,
        files: Sequence[str],
        components: Sequence[str],
        only: Sequence[str],
        drain_timeout: float = 10.0,
        watch: bool = True,
        digest: str | None = None,
        poll: float = POLL_SECONDS,
        errors: TextIO | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self._runtime = runtime
        self._sources = dict(sources or {})  # --source NAME=PATH
        self._files, self._components, self._only = list(files), list(components), list(only)
        self._paths = self._files + self._components
        self._drain_timeout = drain_timeout
        self._watch_files = watch
        self._digest = digest or snapshot(self._paths)
        self._poll = poll
        self._errors = errors
        self._reasons: list[str] = []
        self._wanted = asyncio.Event()
        self._running: dict[RoleKey, str] = {}
        self._buses: dict[str, str] = {}
        self._warned: set[str] = set(runtime.catalog.warnings)
        self._task: asyncio.Task[None] | None = None

    def request(self, why: str) -> None:
        """Ask for a reload (from the loop's thread; see :func:`reload_on_sighup`)."""
        self._reasons.append(why)
        self._wanted.set()

    async def __aenter__(self) -> Reloader:
        runtime = self._runtime
        wanted = footprints(runtime.catalog, runtime.roles)
        self._running = {key: wanted[key] for key in runtime.running if key in wanted}
        self._buses = bus_identities(runtime.catalog, runtime.roles)
        self._task = asyncio.create_task(self._serve(), name="reload")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _serve(self) -> None:
        watcher = asyncio.create_task(self._watch()) if self._watch_files else None
        try:
            while True:
                await self._wanted.wait()
                self._wanted.clear()
                why = ", ".join(dict.fromkeys(self._reasons))
                self._reasons.clear()
                try:
                    await self.reload(why)
                except FnEventsError as exc:
                    self._runtime.console.error(f"reload ({why}) failed: {exc}")
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            digest = await asyncio.to_thread(snapshot, self._paths)
            while digest != self._digest:  # changed: wait until it holds still
                await asyncio.sleep(SETTLE_SECONDS)
                again = await asyncio.to_thread(snapshot, self._paths)
                if again == digest:
                    self._digest = digest
                    self.request("manifest files changed")
                digest = again

    async def reload(self, why: str) -> bool:
        """Apply the manifests as they are now; False (and nothing changed) when they have
        errors, which are printed."""
        self._digest = await asyncio.to_thread(snapshot, self._paths)
        try:
            catalog, roles = await asyncio.to_thread(self._load)
        except ManifestErrors as exc:
            self._refuse(why, [str(error) for error in exc.errors])
            return False
        except FnEventsError as exc:  # --only names nothing now, a backend is missing...
            self._refuse(why, [str(exc)])
            return False
        for warning in catalog.warnings:
            if warning not in self._warned:
                self._runtime.console.warn(warning)
                self._warned.add(warning)
        await self._apply(why, catalog, roles)
        return True

    def _load(self) -> tuple[Catalog, Roles]:
        catalog = load_catalog(self._files, self._components, self._sources)
        roles = Roles.parse(self._only, catalog)
        preflight(catalog, roles)
        return catalog, roles

    def _refuse(self, why: str, errors: list[str]) -> None:
        out = self._errors or sys.stderr
        for error in errors:
            print(f"error: {error}", file=out)
        print(
            f"reload ({why}): {len(errors)} error(s); the old configuration keeps running",
            file=out,
            flush=True,
        )

    async def _apply(self, why: str, catalog: Catalog, roles: Roles) -> None:
        runtime = self._runtime
        wanted = footprints(catalog, roles)
        diff = diff_roles(self._running, wanted)
        needed = bus_identities(catalog, roles)
        retiring = asyncio.ensure_future(self._retire(diff.removed + diff.changed, needed))
        try:
            await asyncio.shield(retiring)
        except asyncio.CancelledError:
            await retiring  # a stop came meanwhile: let what was stopping finish draining
            raise
        runtime.catalog, runtime.roles = catalog, roles
        starting = set(diff.added + diff.changed)
        failed = []
        for item in selection(catalog, roles):  # in start order
            key = role_key(item)
            if key not in starting:
                continue
            try:
                await runtime.start_roles([item])
            except FnEventsError as exc:
                runtime.console.error(f"{role_label(key)} did not start: {exc}")
                failed.append(role_label(key))
            else:
                self._running[key] = wanted[key]
        self._buses = {key: needed[key] for key in runtime.buses if key in needed}
        line = f"reloaded ({why}): " + (diff.summary() if not diff.empty else "nothing changed")
        if failed:
            line += f"; not running: {', '.join(failed)} (the next reload tries again)"
        runtime.console.say(line)

    async def _retire(self, roles: tuple[RoleKey, ...], needed: dict[str, str]) -> None:
        """Stop ``roles``, then close the buses not ``needed`` as they are open."""
        runtime = self._runtime
        await runtime.stop_roles(roles, self._drain_timeout)
        for key in roles:
            self._running.pop(key, None)
        for key in list(runtime.buses):
            if key in needed and needed[key] == self._buses.get(key):
                continue
            bus = runtime.buses.pop(key)
            self._buses.pop(key, None)
            await bus.close()
            runtime.console.say(f"bus closed: {bus.describe()}")


def reload_on_sighup(reloader: Reloader) -> Callable[[], None]:
    """From now on SIGHUP asks ``reloader`` for a reload (call it from the running loop, in
    the main thread; elsewhere it does nothing); returns what puts the previous handler
    back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()

    def on_signal(_signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe(reloader.request, "SIGHUP")

    previous = signal.signal(signal.SIGHUP, on_signal)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous)

    return restore
