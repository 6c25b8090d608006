"""A connection that must prove it is alive before it is used again.

A client library can end up with a dead connection that nobody was told about: nats-py
2.x, when the server goes while bytes are still buffered, raises out of its own close
before it calls the disconnected and closed callbacks, and the client stays CLOSED.
A backend that learns about a lost connection only from those callbacks then retries,
forever, on a client that can never work again.

:class:`LiveClient` holds a backend's current client and hands it out only while the
client itself says it is alive (:attr:`Liveness.alive`, read from the library's own
state, not from callbacks), and, once a call on it failed with a retriable
:class:`BusError`, only after it has passed a health check (:meth:`Liveness.healthy`,
a round trip). Otherwise the client is discarded (:meth:`Liveness.discard`: what waits
on it fails, its listeners hear it is gone) and the next call connects afresh, one
attempt shared by concurrent callers. Retrying and its pace stay with the core
(:mod:`events.bus.resilient`): a failed connect raises, it does not loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, Protocol, TypeVar

from events.errors import BusClosed, BusError


class Liveness(Protocol):
    """What a backend's client tells :class:`LiveClient` about itself."""

    @property
    def alive(self) -> bool:
        """Whether the connection may still be used, from the library's own state (e.g.
        nats-py's ``is_connected``, paho's ``is_connected()``); cheap, no I/O."""
        ...

    async def healthy(self) -> bool:
        """A round trip to the broker (a PING), bounded in time; False if it failed."""
        ...

    async def discard(self) -> None:
        """Give the connection up: fail what waits on it, tell its listeners, close it.
        Idempotent; never raises for a connection that is already gone."""
        ...


C = TypeVar("C", bound=Liveness)


class LiveClient(Generic[C]):
    """The current client of a backend; see the module docstring.

    ``connect`` makes and opens a new client, raising ``BusError(retriable=True)`` when
    the broker cannot be reached. ``what`` names the broker in errors."""

    def __init__(self, connect: Callable[[], Awaitable[C]], what: str) -> None:
        self._connect = connect
        self._what = what
        self._client: C | None = None
        self._suspect = False  # a call on the current client failed: check before reuse
        self._connecting: asyncio.Future[C] | None = None
        self._closed = False
        #: How many clients were connected so far; a new value means a new connection.
        self.generation = 0

    def current(self) -> C | None:
        """The client, if it is alive and not under suspicion; never a dead one (a client
        found dead is discarded here, in the background). No I/O."""
        client = self._client
        if client is None or self._suspect:
            return None
        if not client.alive:
            self._drop(client)
            return None
        return client

    async def get(self) -> C:
        """A client that is alive: the current one, the current one after a passed health
        check when a call on it failed, or a new connection (one attempt, shared)."""
        client = self.current()
        if client is not None:
            return client
        if self._closed:
            raise BusClosed(f"the connection to {self._what} is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._replace())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None
                if not connecting.cancelled():
                    connecting.exception()  # retrieved: every waiter got it raised

    async def _replace(self) -> C:
        old = self._client
        if old is not None:
            if old.alive and self._suspect and await old.healthy():
                self._suspect = False
                return old
            self._client = None
            await old.discard()
        client = await self._connect()
        if self._closed:
            await client.discard()
            raise BusClosed(f"the connection to {self._what} is closed")
        self._client, self._suspect = client, False
        self.generation += 1
        return client

    def suspect(self, client: C) -> None:
        """A call on ``client`` failed as if the broker were gone: it must prove itself
        (alive and healthy) before it is handed out again."""
        if client is self._client:
            self._suspect = True

    @asynccontextmanager
    async def use(self) -> AsyncIterator[C]:
        """``get()`` for one call; a retriable BusError out of the block puts the client
        under suspicion."""
        client = await self.get()
        try:
            yield client
        except BusError as exc:
            if exc.retriable:
                self.suspect(client)
            raise

    def _drop(self, client: C) -> None:
        if client is self._client:
            self._client = None
        task = asyncio.ensure_future(client.discard())
        task.add_done_callback(_retrieve)

    async def close(self, closing: Callable[[C], Awaitable[None]] | None = None) -> None:
        """No new connections from now on; close the current client with ``closing`` (a
        graceful close that flushes what is buffered), else discard it. Idempotent."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        client, self._client = self._client, None
        if client is not None:
            await (closing or _discard)(client)


async def _discard(client: Liveness) -> None:
    await client.discard()


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # a discard that failed has nothing left to tell anyone
