"""``context.state``: Dapr-style state for a Function with ``spec.states``.

``spec.states`` maps a name the code uses to a ``state.redis`` Component
(OpenFunction's ``serving.states``). The API, on ``context.state``:

- ``get(key)`` -> the value, or None for a missing key;
- ``get_with_etag(key)`` -> ``(value, etag)``, ``(None, None)`` for a missing key;
- ``save(key, value, etag=None)`` -> the new etag;
- ``delete(key, etag=None)`` -> True if the key existed.

With one store, ``context.state`` is that store; with several, pick one with
``context.state["name"]`` (which also works with one). ``context.state.names`` lists
them.

**Sync or async.** The methods have the same names either way, as in the Dapr
Python SDK (``DaprClient`` and ``dapr.aio.clients.DaprClient``): a plain ``def``
function (run in a worker thread) calls them and gets the result; an ``async def``
function awaits them (called on the event loop they return a coroutine, since
blocking there would stall every other event).

**Values.** As Dapr's HTTP API stores them: ``bytes`` are stored unchanged, any
other value as JSON (a ``str`` becomes a JSON string). ``get`` parses stored JSON
and returns other bytes as ``bytes`` (so bytes that happen to be valid JSON come
back parsed: pass ``raw=True`` to always get the stored bytes).

**Concurrency.** Without ``etag`` a save is last-write-wins (Dapr's default);
with the etag from ``get_with_etag`` it applies only if nobody saved the key in
between, else it raises :class:`StateConflictError` and changes nothing (Dapr's
first-write / optimistic concurrency). Each operation is atomic on the server.

**Keys** follow the Component's ``keyPrefix`` as in Dapr: ``appid`` (the default:
``{name}-{namespace}||key``, the app id OpenFunction gives a Function's Dapr
sidecar), ``name`` (``{component}||key``), ``namespace``
(``{namespace}.{name}-{namespace}||key``), ``none`` (``key``), or any other text
(``{text}||key``). A Dapr app with the same Component and prefix shares the keys.

A failure to reach the store raises ``StateStoreError``; raising out of the
function redelivers an async function's event, and answers 500 to a sync call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator, Mapping
from typing import Any, Protocol

import orjson

from events.errors import FnEventsError

SEPARATOR = "||"


class StateConflictError(FnEventsError, ValueError):
    """A save or delete with an etag found the key changed (or gone) since it was read."""


class KeyValue(Protocol):
    """A state store's keys (``events.brokers.redis.kv.RedisKeyValue``)."""

    async def get(self, key: str) -> tuple[bytes | None, str | None]: ...

    async def save(self, key: str, data: bytes, etag: str | None = None) -> str | None: ...

    async def delete(self, key: str, etag: str | None = None) -> bool | None: ...


def key_prefix(strategy: str, component: str, name: str, namespace: str) -> str:
    """What Dapr puts before ``||`` for a Function ``namespace/name`` ('' for 'none')."""
    app_id = f"{name}-{namespace}"
    match strategy.lower():
        case "appid":
            return app_id
        case "name":
            return component
        case "namespace":
            return f"{namespace}.{app_id}"
        case "none":
            return ""
    return strategy


def encode(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return orjson.dumps(value)


def decode(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data


class StateStore:
    """One named store as a function sees it (see the module docstring)."""

    def __init__(
        self, name: str, keys: KeyValue, prefix: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.name = name
        self._keys = keys
        self._prefix = prefix
        self._loop = loop

    def key(self, key: str) -> str:
        """The Redis key of ``key``."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"a state key is a non-empty string, got {key!r}")
        return f"{self._prefix}{SEPARATOR}{key}" if self._prefix else key

    def get(self, key: str, raw: bool = False) -> Any:
        return self._run(self._get(key, raw))

    def get_with_etag(self, key: str, raw: bool = False) -> Any:
        return self._run(self._get_with_etag(key, raw))

    def save(self, key: str, value: Any, etag: str | None = None) -> Any:
        return self._run(self._save(key, value, etag))

    def delete(self, key: str, etag: str | None = None) -> Any:
        return self._run(self._delete(key, etag))

    async def _get(self, key: str, raw: bool) -> Any:
        return (await self._get_with_etag(key, raw))[0]

    async def _get_with_etag(self, key: str, raw: bool) -> tuple[Any, str | None]:
        data, etag = await self._keys.get(self.key(key))
        if data is None:
            return None, None
        return (data if raw else decode(data)), etag

    async def _save(self, key: str, value: Any, etag: str | None) -> str:
        new = await self._keys.save(self.key(key), encode(value), etag)
        if new is None:
            raise self._conflict("save", key, etag)
        return new

    async def _delete(self, key: str, etag: str | None) -> bool:
        removed = await self._keys.delete(self.key(key), etag)
        if removed is None:
            raise self._conflict("delete", key, etag)
        return removed

    def _conflict(self, what: str, key: str, etag: str | None) -> StateConflictError:
        return StateConflictError(
            f"cannot {what} state key {key!r} in store '{self.name}': its etag is no longer "
            f"{etag!r} (another save or delete came first); read it again and retry"
        )

    def _run(self, coroutine: Awaitable[Any]) -> Any:
        """The result in a worker thread; the awaitable itself on the host's loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            return coroutine
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]


class StateStores:
    """``context.state``: the stores by name (``[name]``, ``in``, iteration), and the only
    store's methods when there is exactly one."""

    def __init__(self, function: str, stores: Mapping[str, StateStore]) -> None:
        self._function = function
        self._stores = dict(stores)

    @property
    def names(self) -> list[str]:
        return sorted(self._stores)

    def __getitem__(self, name: str) -> StateStore:
        try:
            return self._stores[name]
        except KeyError:
            raise KeyError(
                f"Function {self._function} has no state store named {name!r}; declared: "
                f"{', '.join(self.names) or 'none'} (spec.states)"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._stores)

    def __len__(self) -> int:
        return len(self._stores)

    def _only(self) -> StateStore:
        if len(self._stores) == 1:
            return next(iter(self._stores.values()))
        if not self._stores:
            raise FnEventsError(
                f"Function {self._function} declares no state store: add one to spec.states "
                "(a name -> a state.redis Component)"
            )
        raise FnEventsError(
            f"Function {self._function} has several state stores ({', '.join(self.names)}): "
            'pick one with context.state["name"]'
        )

    def __contains__(self, name: object) -> bool:
        return name in self._stores

    def get(self, key: str, raw: bool = False) -> Any:
        return self._only().get(key, raw)

    def get_with_etag(self, key: str, raw: bool = False) -> Any:
        return self._only().get_with_etag(key, raw)

    def save(self, key: str, value: Any, etag: str | None = None) -> Any:
        return self._only().save(key, value, etag)

    def delete(self, key: str, etag: str | None = None) -> Any:
        return self._only().delete(key, etag)
