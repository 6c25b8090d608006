"""What a function receives as ``context``: its name, ``send`` for outputs, and ``state``.

``context.state`` is the Function's state stores (:mod:`events.functions.state`);
None when it declares no ``spec.states``.

``context.send(output, data)`` may be called from an ``async def`` function or
from a plain one (which runs in a worker thread). Sends are collected and
awaited before the incoming event is acked, so an output is never lost because
the function returned first: the event is acked only once its outputs are on the
bus (at least once, end to end).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from events.bindings.sdk import from_sdk
from events.cloudevent import CloudEvent
from events.functions.state import StateStores

OUTPUT_TYPE = "dev.fnevents.function.output"
Send = Callable[[CloudEvent], Awaitable[None]]


class FunctionContext:
    def __init__(
        self,
        namespace: str,
        name: str,
        outputs: Mapping[str, Send],
        state: StateStores | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.state = state
        self._outputs = dict(outputs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[concurrent.futures.Future[None] | asyncio.Future[None]] = []

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def outputs(self) -> list[str]:
        return sorted(self._outputs)

    def send(self, output: str, data: Any) -> None:
        """Send ``data`` (a CloudEvent, or anything to wrap in one) to a declared output."""
        if output not in self._outputs:
            raise ValueError(
                f"Function {self.name} has no output named {output!r}; declared outputs: "
                f"{', '.join(self.outputs) or 'none'} (spec.outputs)"
            )
        event = self._as_event(output, data)
        assert self._loop is not None, "the function host binds the context before calling"
        coroutine = self._outputs[output](event)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._pending.append(asyncio.ensure_future(coroutine))
        else:
            self._pending.append(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def flush(self) -> None:
        """Wait for every send so far; raise the first failure."""
        pending, self._pending = self._pending, []
        for future in pending:
            await (
                asyncio.wrap_future(future)
                if isinstance(future, concurrent.futures.Future)
                else future
            )

    def _as_event(self, output: str, data: Any) -> CloudEvent:
        if isinstance(data, CloudEvent):
            return data
        if hasattr(data, "get_attributes") and hasattr(data, "get_data"):
            return from_sdk(data)
        return CloudEvent.create(
            OUTPUT_TYPE, f"/functions/{self.namespace}/{self.name}", data, subject=output
        )
