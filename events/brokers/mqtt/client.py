"""One paho-mqtt 2.x client, driven by the running asyncio loop instead of a paho thread.

paho supports external event loops through its socket callbacks: the socket is
registered with ``loop.add_reader``, bytes paho queues are flushed with
``loop_write`` on the next loop turn (one flush for everything queued in that
turn; ``add_writer`` only when the kernel buffer is full), and ``loop_misc``
(keepalive) runs every second. Every paho callback therefore runs on the loop's
thread, so nothing here needs locks or ``call_soon_threadsafe``, with one
exception: ``connect`` (DNS, TCP and TLS handshakes are blocking in paho) runs in
a worker thread, and the socket callbacks it triggers are handed to the loop.

Each request that the broker answers (PUBLISH with QoS 1 or 2, SUBSCRIBE) gets a
future keyed by its packet id. When the connection drops, every pending future
fails with ``BusError(retriable=True)`` and ``on_lost`` is called; a
:class:`MqttClient` is never reconnected (reconnecting is the core's job: the bus
builds a new one).

MQTT 3.1.1 by default (what ``pubsub.mqtt3`` speaks); ``protocol="5"`` gives an
MQTT 5 connection for clients that need its properties (the MQTT source reads
CloudEvents from User Properties). For MQTT 5, ``clean_session=False`` means
Clean Start 0 with a Session Expiry Interval that never ends (3.1.1's persistent
session), and ``receive_maximum`` bounds the unacked QoS 1/2 messages the broker
may send at once (3.1.1 has no such setting: the broker decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from events.brokers.mqtt.fastpublish import FastPublishClient
from events.brokers.mqtt.settings import MqttSettings, TrackedContext
from events.errors import BusError

KEEPALIVE = 30  # seconds; paho pings after this much silence and gives up after another
CONNECT_TIMEOUT = 5.0
DISCONNECT_TIMEOUT = 2.0
#: PUBLISH packets paho keeps on the wire at once: no limit of its own (its default is 20,
#: and any limit costs a scan of every outstanding message per PUBACK); MqttBus bounds them.
MAX_INFLIGHT = 0
#: Packets read in one readiness callback before letting other tasks run.
READ_BATCH = 64
#: Refusals that retrying cannot fix (paho names MQTT 3.1.1 CONNACK codes by their v5 names).
_FATAL_CONNACK = frozenset(
    {
        "Unsupported protocol version",
        "Client identifier not valid",
        "Bad user name or password",
        "Not authorized",
    }
)

#: MQTT 5 Session Expiry Interval meaning "never expires" (3.1.1's clean session 0).
SESSION_NEVER_EXPIRES = 0xFFFFFFFF

OnMessage = Callable[[paho.MQTTMessage], None]
OnLost = Callable[[BusError], None]


class MqttClient:
    """One MQTT 3.1.1 (or 5) connection. Use from the event loop that created it."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        clean_session: bool,
        on_message: OnMessage | None = None,
        on_lost: OnLost | None = None,
        protocol: Literal["3.1.1", "5"] = "3.1.1",
        receive_maximum: int | None = None,
    ) -> None:
        self.endpoint = settings.endpoint
        self.client_id = client_id
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._on_message, self._on_lost = on_message, on_lost
        v5 = protocol == "5"
        client = FastPublishClient(  # paho's, with a cheaper PUBLISH decode
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if v5 else clean_session,  # MQTT 5 says it on CONNECT
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=True,  # PUBACK only when the handler acks
        )
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)
        client.connect_timeout = CONNECT_TIMEOUT
        if self.endpoint.username is not None:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        self._tls = TrackedContext(settings.ssl_context()) if self.endpoint.tls else None
        if self._tls is not None:
            client.tls_set_context(self._tls)  # type: ignore[arg-type]
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._answered
        client.on_subscribe = self._subscribed
        client.on_message = self._message
        client.on_socket_open = self._socket_opened
        client.on_socket_close = self._socket_closed
        client.on_socket_register_write = self._wants_write
        client.on_socket_unregister_write = self._wrote_all
        self._client = client
        self._connect_options: dict[str, Any] = {}
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 0 if clean_session else SESSION_NEVER_EXPIRES
            if receive_maximum is not None:
                properties.ReceiveMaximum = receive_maximum
            self._connect_options = {"clean_start": clean_session, "properties": properties}
        self._fd: int | None = None
        self._flush_scheduled = False
        self._writer = False
        self._misc: asyncio.TimerHandle | None = None
        self._progress = 0  # packets handled, to know when a read found nothing
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._connack: asyncio.Future[None] | None = None
        self._closed = asyncio.Event()
        self.lost: BusError | None = None
        self._leaving = False

    # -- requests -----------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and wait for CONNACK; an unreachable broker is a retriable BusError."""
        self._connack = connack = self._loop.create_future()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT * 2):
                try:
                    await asyncio.to_thread(
                        partial(
                            self._client.connect,
                            self.endpoint.host,
                            self.endpoint.port,
                            KEEPALIVE,
                            **self._connect_options,
                        )
                    )
                except (OSError, ValueError) as exc:  # timeouts and ssl.SSLError are OSErrors
                    if self._tls is not None:
                        self._tls.close_all()  # paho leaves a socket whose handshake failed open
                    raise self._unreachable(exc) from None
                await connack
        except BaseException as exc:
            self._connack = None
            connack.cancel()
            self.abort()
            if isinstance(exc, TimeoutError):
                raise self._unreachable("no answer to CONNECT in time") from None
            raise

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> asyncio.Future[Any]:
        """Send PUBLISH; the future resolves on PUBACK (QoS 1) or PUBCOMP (QoS 2)."""
        if self.lost is not None:
            raise BusError(str(self.lost), retriable=True)
        info = self._client.publish(topic, payload, qos, retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise self._failure(f"publish failed: {paho.error_string(info.rc)}")
        future = self._loop.create_future()
        self._pending[info.mid] = future
        return future

    async def subscribe(self, topic_filter: str, qos: int) -> int:
        """SUBSCRIBE and wait for SUBACK; returns the granted QoS (128 = refused)."""
        if self.lost is not None:
            raise BusError(str(self.lost), retriable=True)
        rc, mid = self._client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise self._failure(f"subscribe failed: {paho.error_string(rc)}")
        future = self._loop.create_future()
        self._pending[mid] = future
        return await future

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK (or PUBCOMP) a received message; nothing to do once the connection is gone."""
        if self.lost is None and self._fd is not None:
            self._client.ack(mid, qos)

    async def disconnect(self) -> None:
        """Send DISCONNECT after everything already queued, then close. Idempotent."""
        self._leaving = True
        if self._fd is not None and self.lost is None:
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), DISCONNECT_TIMEOUT)
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without DISCONNECT (as a crash would)."""
        self._leaving = True
        sock = self._client.socket()
        self._unregister()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._lose(
            BusError(
                f"the connection to the MQTT broker at {self.endpoint.address} was closed",
                retriable=True,
            )
        )

    @property
    def is_open(self) -> bool:
        return self._fd is not None and self.lost is None

    @property
    def alive(self) -> bool:
        """Open by our account and connected by paho's own (its connection state), for
        :class:`events.bus.live.LiveClient`."""
        return self.is_open and self._client.is_connected()

    async def healthy(self) -> bool:
        """paho offers no PING to wait for, so a connection that failed a call is never
        trusted again: the proof of a reconnect is a fresh connection."""
        return False

    async def discard(self) -> None:
        self.abort()

    # -- paho callbacks (on the loop thread) ---------------------------------------

    def _connected(self, client, userdata, flags, reason, properties) -> None:
        future = self._connack
        if future is None or future.done():
            return
        if reason.is_failure:
            if str(reason) in _FATAL_CONNACK:
                error = BusError(
                    f"the MQTT broker at {self.endpoint.address} refused client "
                    f"{self.client_id!r}: {reason}"
                )
            else:
                error = self._unreachable(f"connection refused: {reason}")
            future.set_exception(error)
        else:
            future.set_result(None)

    def _disconnected(self, client, userdata, flags, reason, properties) -> None:
        why = "disconnected" if self._leaving else f"lost the connection ({reason})"
        self._lose(self._failure(why))
        self._closed.set()

    def _answered(self, client, userdata, mid, reason, properties) -> None:
        self._progress += 1
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _subscribed(self, client, userdata, mid, reasons, properties) -> None:
        self._progress += 1
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(reasons[0].value if reasons else 128)

    def _message(self, client, userdata, message: paho.MQTTMessage) -> None:
        self._progress += 1
        if self._on_message is not None:
            self._on_message(message)

    # -- socket plumbing -----------------------------------------------------------

    def _in_loop(self, callback: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            callback(*args)
        else:  # only while ``connect`` runs in its worker thread
            self._loop.call_soon_threadsafe(callback, *args)

    def _socket_opened(self, client, userdata, sock) -> None:
        self._in_loop(self._register, sock)

    def _register(self, sock) -> None:
        if self._leaving:  # given up while connect was still running in its thread
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._fd = sock.fileno()
        with contextlib.suppress(OSError, AttributeError):  # small acks go out at once
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.add_reader(self._fd, self._readable)
        self._misc = self._loop.call_later(1.0, self._tick)

    def _socket_closed(self, client, userdata, sock) -> None:
        self._in_loop(self._unregister)
        # paho calls on_disconnect right after this; should it not (an exception in
        # between), the connection must not look open with no socket under it
        self._in_loop(self._loop.call_soon, self._closed_without_word)

    def _closed_without_word(self) -> None:
        if self.lost is None and self._fd is None:
            self._lose(self._failure("the connection closed"))

    def _unregister(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None
        self._writer = False
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _wants_write(self, client, userdata, sock) -> None:
        self._in_loop(self._schedule_flush)

    def _schedule_flush(self) -> None:
        # paho queued a packet (maybe from inside one of its callbacks): write everything
        # queued during this loop turn in one go on the next one. Writing at once instead
        # saves ~40 µs of latency but costs ~10 % more CPU per event under load (measured)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._fd is None:
            return
        self._client.loop_write()
        if self._fd is not None and self._client.want_write() and not self._writer:
            self._writer = True  # the kernel buffer is full: wait until it drains
            self._loop.add_writer(self._fd, self._flush)

    def _wrote_all(self, client, userdata, sock) -> None:
        self._in_loop(self._stop_writer)

    def _stop_writer(self) -> None:
        if self._writer and self._fd is not None:
            self._loop.remove_writer(self._fd)
        self._writer = False

    def _readable(self) -> None:
        client = self._client
        for _ in range(READ_BATCH):
            before = self._progress
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._fd is None:
                return
            sock = client.socket()
            pending = getattr(sock, "pending", None)  # TLS keeps decrypted bytes of its own
            if self._progress == before and not (pending is not None and pending() > 0):
                return
        # The batch ran out with bytes possibly still decrypted inside the TLS socket, where
        # the selector cannot see them: come back for them rather than wait for new bytes.
        self._loop.call_soon(self._readable)

    def _tick(self) -> None:
        self._misc = None
        if self._fd is None:
            return
        self._client.loop_misc()
        if self._fd is not None:
            self._misc = self._loop.call_later(1.0, self._tick)

    # -- failure --------------------------------------------------------------------

    def _lose(self, error: BusError) -> None:
        if self.lost is not None:
            return
        self.lost = error
        self._closed.set()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(error)
        if self._on_lost is not None and not self._leaving:
            self._on_lost(error)

    def _failure(self, what: str) -> BusError:
        return BusError(f"MQTT broker at {self.endpoint.address}: {what}", retriable=True)

    def _unreachable(self, exc: object) -> BusError:
        return BusError(
            f"cannot reach MQTT broker at {self.endpoint.address}: {exc}", retriable=True
        )
