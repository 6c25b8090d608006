"""One NATS connection of a :class:`~events.brokers.jetstream.bus.JetStreamBus`.

A :class:`JetStreamClient` is one connection's lifetime. nats-py's own reconnect
loop is off: when the connection drops, the client is marked lost, every publish
waiting for its PubAck fails with a retriable :class:`BusError`, and the bus opens
a new client on its next call. So the core's backoff (``events.bus.resilient``)
paces reconnect attempts, and nothing loops inside the backend.

"Lost" is not only what nats-py's disconnected and closed callbacks say: nats-py 2.x
skips both when the server goes while bytes are still buffered (its close awaits
``transport.drain()``, which raises, before it calls them), and the connection then
sits CLOSED without a word. :attr:`JetStreamClient.alive` therefore reads nats-py's
own state too, and the bus holds its client in an :class:`events.bus.live.LiveClient`,
which hands out only a client that says it is alive (and, after a failed call, one
that answered a PING) and discards the others, telling their listeners.

Publishing waits for the PubAck on a reply subject of our own (one wildcard
subscription per client, a future per message), so any number of concurrent
publishes are pipelined on the connection, as nats-py's ``publish_async`` does,
with orjson for the acks and without its 4,000-message stall limit.

Streams and consumers: :mod:`events.brokers.jetstream.streams`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import AuthorizationError
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import APIError, ServiceUnavailableError
from nats.js.manager import JetStreamManager

from events.brokers.jetstream.settings import JetStreamSettings
from events.brokers.jetstream.streams import Streams
from events.errors import BackendNotAvailable, BusError

CONNECT_TIMEOUT = 2.0
API_TIMEOUT = 5.0
#: How long a publish waits for its PubAck before the broker counts as unreachable.
PUBLISH_TIMEOUT = 5


class NoStream(BusError):
    """Nothing answered a publish: the topic's stream is gone (deleted meanwhile)."""


class JetStreamClient:
    """One live connection: publish with PubAck, and the JetStream API calls we need."""

    def __init__(self, settings: JetStreamSettings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.nc = Client()
        #: Set once the connection is gone; a lost client is never used again.
        self.lost = asyncio.Event()
        self._listeners: set[Callable[[], None]] = set()
        self._last_error: BaseException | None = None
        self._acks: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_token = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._reply_prefix = ""
        prefix = settings.apiPrefix or api.DEFAULT_PREFIX
        self.api_prefix = f"$JS.{settings.domain}.API" if settings.domain else prefix
        jsm = JetStreamManager(self.nc, prefix=self.api_prefix, timeout=API_TIMEOUT)
        self.jsm = jsm
        #: This connection's view of streams and consumers (cached, so once per topic).
        self.streams = Streams(jsm, settings, url)

    # -- connection ---------------------------------------------------------------

    async def open(self) -> JetStreamClient:
        servers = [s.strip() for s in self.url.split(",") if s.strip()]
        auth = _auth(self.settings)
        try:
            # Two quick attempts per server, then give up: the core retries with backoff.
            await asyncio.wait_for(
                self.nc.connect(
                    servers,
                    name=self.settings.name,
                    connect_timeout=CONNECT_TIMEOUT,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.05,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_lost,
                    closed_cb=self._on_lost,
                    skip_subject_validation=True,  # topics are checked once, in check_topic
                    **auth,
                ),
                timeout=2 * CONNECT_TIMEOUT * len(servers) + 1,
            )
        except (OSError, NatsError, TimeoutError) as exc:
            await self._abandon()
            cause = self._last_error or exc
            if isinstance(cause, AuthorizationError):
                raise BusError(f"NATS at {self.url} refused the credentials: {cause}") from None
            raise BusError(f"cannot reach NATS at {self.url}: {cause}", retriable=True) from None
        try:
            self._reply_prefix = self.nc.new_inbox() + "."
            await self.nc.subscribe(self._reply_prefix + "*", cb=self._on_pub_ack)
            self._sweeper = asyncio.create_task(self._sweep(), name=f"nats {self.url} acks")
            await self.jsm.account_info()
        except ServiceUnavailableError:
            await self._abandon()
            raise BusError(
                f"NATS at {self.url} does not serve JetStream (start nats-server with -js"
                + (f", or check domain '{self.settings.domain}'" if self.settings.domain else "")
                + ")"
            ) from None
        except (OSError, NatsError, TimeoutError) as exc:
            await self._abandon()
            raise BusError(f"cannot reach NATS at {self.url}: {exc}", retriable=True) from None
        return self

    def on_lost(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (once) when this connection is gone."""
        self._listeners.add(listener)

    def forget(self, listener: Callable[[], None]) -> None:
        self._listeners.discard(listener)

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc  # reported by whoever sees the client fail next

    async def _on_lost(self) -> None:
        if self.lost.is_set():
            return
        self.lost.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
        error = BusError(f"lost the connection to NATS at {self.url}", retriable=True)
        for future in self._acks.values():
            if not future.done():
                future.set_exception(error)
        for listener in list(self._listeners):
            listener()

    @property
    def alive(self) -> bool:
        """Usable: not lost, and connected by nats-py's own account (see the module doc)."""
        return not self.lost.is_set() and self.nc.is_connected

    async def healthy(self) -> bool:
        """One PING/PONG within ``CONNECT_TIMEOUT`` seconds."""
        try:
            await asyncio.wait_for(self.nc.flush(CONNECT_TIMEOUT), CONNECT_TIMEOUT + 0.5)
        except (OSError, NatsError, TimeoutError):
            return False
        return self.alive

    async def discard(self) -> None:
        """Give the connection up: fail waiting publishes, tell the listeners, close."""
        await self._abandon()

    async def _abandon(self) -> None:
        await self._on_lost()
        if not self.nc.is_closed:
            with contextlib.suppress(NatsError, OSError, TimeoutError):  # it is gone anyway
                await self.nc.close()

    async def close(self) -> None:
        """Flush what is buffered (acks included) and disconnect."""
        if self.nc.is_connected:
            with contextlib.suppress(NatsError, TimeoutError, OSError):
                await asyncio.wait_for(self.nc.drain(), API_TIMEOUT)
        await self._abandon()

    async def pending(self, stream: str, consumer: str) -> int:
        """The consumer's messages not yet delivered plus those not yet acked."""
        try:
            info = await self.jsm.consumer_info(stream, consumer)
        except ServiceUnavailableError as exc:
            raise BusError(
                f"JetStream at {self.url} is unavailable: {exc}", retriable=True
            ) from None
        except APIError as exc:
            raise BusError(f"JetStream at {self.url} refused: {exc.description}") from None
        except (OSError, NatsError, TimeoutError) as exc:
            raise BusError(f"cannot reach NATS at {self.url}: {exc}", retriable=True) from None
        return (info.num_pending or 0) + (info.num_ack_pending or 0)

    def lost_error(self) -> BusError:
        return BusError(f"lost the connection to NATS at {self.url}", retriable=True)

    # -- publishing ---------------------------------------------------------------

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Publish and wait for the stream's PubAck (a duplicate Nats-Msg-Id counts too).

        Fails with a retriable BusError when no PubAck comes within about
        ``PUBLISH_TIMEOUT`` seconds (see :meth:`_sweep`) or the connection goes."""
        if not self.alive:
            raise self.lost_error()
        token = self._next_token
        self._next_token = token + 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[token] = future
        try:
            await self.nc.publish(subject, payload, self._reply_prefix + str(token), headers)
            reply = await future
        except (OSError, NatsError) as exc:
            raise BusError(f"cannot publish to NATS at {self.url}: {exc}", retriable=True) from None
        finally:
            del self._acks[token]
        error = reply.get("error")
        if error:
            raise _api_failure(f"NATS refused a publish to {subject}", error)

    async def _sweep(self) -> None:
        """Fail publishes left without a PubAck for ``PUBLISH_TIMEOUT`` seconds.

        One timer per connection instead of one per publish: every second, note the
        next token; tokens older than the note taken ``PUBLISH_TIMEOUT`` seconds ago
        have waited at least that long (the dict keeps them in issue order)."""
        marks: deque[int] = deque()
        while True:
            await asyncio.sleep(1.0)
            marks.append(self._next_token)
            if len(marks) <= PUBLISH_TIMEOUT:
                continue
            cutoff = marks.popleft()
            for token, future in list(self._acks.items()):
                if token >= cutoff:
                    break
                if not future.done():
                    future.set_exception(
                        BusError(
                            f"NATS at {self.url} did not confirm a publish within "
                            f"{PUBLISH_TIMEOUT:g}s",
                            retriable=True,
                        )
                    )

    async def _on_pub_ack(self, msg: Msg) -> None:
        future = self._acks.get(int(msg.subject[len(self._reply_prefix) :]))
        if future is None or future.done():
            return
        headers = msg.headers
        if headers and headers.get("Status") == "503":  # no responders: no stream has it
            future.set_exception(NoStream("no JetStream stream holds the subject"))
        else:
            future.set_result(orjson.loads(msg.data))


def _api_failure(what: str, error: dict[str, Any]) -> BusError:
    code, text = error.get("code"), error.get("description", "")
    if code == 503:
        return BusError(f"{what}: JetStream unavailable ({text})", retriable=True)
    return BusError(f"{what}: {text} (code {code}, err_code {error.get('err_code')})")


def _auth(settings: JetStreamSettings) -> dict[str, Any]:
    """nats-py connect options for Dapr's auth metadata (jwt+seedKey, TLS client, token)."""
    if settings.jwt and settings.seedKey:
        try:
            import nkeys
        except ImportError as exc:
            raise BackendNotAvailable(
                "jwt/seedKey authentication needs nkeys: pip install nkeys"
            ) from exc
        jwt, seed = settings.jwt.encode(), settings.seedKey.encode()

        def signature(nonce: str) -> bytes:
            keys = nkeys.from_seed(bytearray(seed))
            try:
                return base64.b64encode(keys.sign(nonce.encode()))
            finally:
                keys.wipe()

        return {"user_jwt_cb": lambda: bytearray(jwt), "signature_cb": signature}
    if settings.tls_client_cert and settings.tls_client_key:
        context = ssl.create_default_context()
        try:
            context.load_cert_chain(settings.tls_client_cert, settings.tls_client_key)
        except (OSError, ssl.SSLError) as exc:
            raise BusError(
                f"cannot load tls_client_cert {settings.tls_client_cert} and tls_client_key "
                f"{settings.tls_client_key}: {exc}"
            ) from None
        return {"tls": context}
    if settings.token:
        return {"token": settings.token}
    return {}
