"""Importing a declared Function's target, and calling it the way it asks.

A function takes ``(event)`` or ``(context, event)`` -- the second form is
OpenFunction's functions-framework style, for functions that send outputs. The
event is the official SDK's ``cloudevents.core.v1.event.CloudEvent``. An
``async def`` function is awaited; a plain one runs in a worker thread so it
cannot stall the event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from events.bindings.sdk import to_sdk
from events.cloudevent import CloudEvent
from events.errors import FnEventsError
from events.functions.context import FunctionContext, Send


class FunctionLoadError(FnEventsError, ImportError):
    """A declared Function's source or target cannot be loaded."""


def load_target(source: str, target: str, base_dir: Path, name: str) -> Callable[..., Any]:
    """Import ``target`` from ``source``: a ``.py`` path (relative to ``base_dir``) or a module."""
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
    """

    def __init__(
        self, handler: Callable[..., Any], namespace: str, name: str, outputs: Mapping[str, Send]
    ) -> None:
        self._handler = handler
        self._namespace, self._name, self._outputs = namespace, name, outputs
        self._is_async = inspect.iscoroutinefunction(handler)
        self._wants_context = _positional_count(handler) >= 2

    async def __call__(self, event: CloudEvent) -> Any:
        context = FunctionContext(self._namespace, self._name, self._outputs)
        context.bind(asyncio.get_running_loop())
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
