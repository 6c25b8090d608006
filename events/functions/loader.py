"""Importing a declared Function's target, and calling it the way it asks.

A function takes ``(event)`` or ``(context, event)`` -- the second form is for
functions that send outputs (``context.send``) or use state (``context.state``).
The event is the official SDK's ``cloudevents.core.v1.event.CloudEvent``. An
``async def`` function is awaited; a plain one runs in a worker thread so it
cannot stall the event loop. Other calling conventions (Google's and
OpenFunction's Python frameworks) are in :mod:`events.functions.frameworks`.

``spec.env`` is applied to this process's environment before the function's
module is imported, so module-level reads (``os.environ["X"]``) see it. Functions
run in one process share one environment: two of them setting one variable to
different values is a load error (run them apart with ``--only function/NAME``).
A variable already set in the shell is replaced by the manifest's value.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from events.bindings.sdk import to_sdk
from events.cloudevent import CloudEvent
from events.errors import FnEventsError
from events.functions.context import FunctionContext, Send
from events.functions.state import StateStores

#: variable -> (value, Function) set by ``spec.env`` in this process so far
_ENV_SET_BY: dict[str, tuple[str, str]] = {}


class FunctionLoadError(FnEventsError, ImportError):
    """A declared Function's source or target cannot be loaded."""


def load_target(
    source: str, target: str, base_dir: Path, name: str, env: dict[str, str] | None = None
) -> Callable[..., Any]:
    """Import ``target`` from ``source``: a ``.py`` path (relative to ``base_dir``) or a module,
    after applying ``env`` to the process environment."""
    apply_env(env or {}, name)
    module = (
        _load_file(base_dir / source, name)
        if source.endswith(".py")
        else _load_module(source, name)
    )
    handler = getattr(module, target, None)
    if not callable(handler):
        raise FunctionLoadError(
            f"Function {name}: {source} has no function named '{target}' (spec.target)"
        )
    return handler


def apply_env(env: dict[str, str], name: str) -> None:
    """Set ``env`` for Function ``name``; FunctionLoadError if another Function of this
    process set one of the variables to another value."""
    for variable, value in env.items():
        earlier = _ENV_SET_BY.get(variable)
        if earlier is not None and earlier[0] != value and earlier[1] != name:
            raise FunctionLoadError(
                f"Function {name}: spec.env sets {variable}={value!r}, but Function "
                f"{earlier[1]} in this process set it to {earlier[0]!r}, and functions of one "
                "process share one environment: run them in separate processes "
                "(fnevents run --only function/NAME)"
            )
    for variable, value in env.items():
        os.environ[variable] = value
        _ENV_SET_BY[variable] = (value, name)


def _load_file(path: Path, name: str) -> Any:
    path = path.resolve()
    if not path.is_file():
        raise FunctionLoadError(f"Function {name}: source file {path} does not exist")
    module_name = f"fnevents_function_{name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise FunctionLoadError(f"Function {name}: importing {path} failed: {exc!r}") from exc
    return module


def _load_module(source: str, name: str) -> Any:
    try:
        return importlib.import_module(source)
    except ImportError as exc:
        raise FunctionLoadError(f"Function {name}: cannot import module {source}: {exc}") from exc


class Invoker:
    """Calls one user function with each event, in the form the function declares.

    Each call gets its own context, and its sends are awaited before the call
    counts as done, so concurrent events never share (or lose) each other's outputs.

    ``takes_requests`` is False: the sync host turns each request into CloudEvents
    and calls the invoker with them. A framework whose functions take the HTTP
    request itself sets it and defines ``async respond(request)``, the HTTP response to
    an aiohttp request.
    """

    takes_requests = False

    def __init__(
        self,
        handler: Callable[..., Any],
        namespace: str,
        name: str,
        outputs: Mapping[str, Send],
        states: StateStores | None = None,
    ) -> None:
        self._handler = handler
        self._namespace, self._name, self._outputs = namespace, name, outputs
        self._states = states
        self._is_async = inspect.iscoroutinefunction(handler)
        self._wants_context = _positional_count(handler) >= 2

    def context(self) -> FunctionContext:
        """A fresh context for one call, bound to the running loop."""
        context = FunctionContext(self._namespace, self._name, self._outputs, self._states)
        context.bind(asyncio.get_running_loop())
        return context

    async def __call__(self, event: CloudEvent) -> Any:
        context = self.context()
        args = (context, to_sdk(event)) if self._wants_context else (to_sdk(event),)
        if self._is_async:
            result = await self._handler(*args)
        else:
            result = await asyncio.to_thread(self._handler, *args)
        await context.flush()
        return result


def _positional_count(handler: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in kinds)
