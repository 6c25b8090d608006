"""The ``mqtt`` source: messages from an MQTT broker (3.1.1 or 5) as CloudEvents on the bus.

Settings (OpenFunction's names, plus fnevents extensions):

* ``url``: ``tcp://host[:port]`` or ``mqtt://`` (plain, port 1883), ``ssl://`` or
  ``mqtts://`` (TLS, port 8883); credentials may be in the url or in
  ``username``/``password`` (which win).
* ``topic``: a topic filter; ``+`` and ``#`` wildcards work, and
  ``$share/<group>/<filter>`` makes replicas split the messages between them.
* ``qos``: the subscription's QoS. 1 (the default) is at least once. 0 is at most
  once: the broker drops what it cannot hand over (a warning says so at startup,
  see ``notices``). 2 is received as 1: MQTT's QoS 2 hand-off completes (PUBREC) before
  the event is safe, so a crash at the wrong moment would lose the message;
  QoS 1 redelivers it instead, and the stable ``id`` makes the duplicate visible.
* ``retain``: a publish flag in OpenFunction's schema; a source publishes
  nothing, so it is accepted and ignored. (Retained messages on the broker are
  still delivered when the source first subscribes, as MQTT does.)
* ``cleanSession``: default false, a persistent session: the broker keeps the
  subscription and queues QoS 1 messages while the source is down, and sends
  the unacked ones again when it comes back. With true, messages published
  while the source is away are lost.
* ``caCert``, ``clientCert``, ``clientKey``: PEM text, for ``ssl://`` urls.
* ``consumerID``: the client id, ``{namespace}-esc-mqtt-{event}`` by default as
  OpenFunction names it. With a ``$share/...`` topic, ``-<replica>`` is appended,
  the replica being the ``POD_NAME`` environment variable, else ``HOSTNAME``,
  else the host name: replicas sharing a client id would take each other's
  connection over. Set ``POD_NAME`` when several replicas run on one host; keep
  it stable across restarts so a replica resumes its own session.
* ``username``, ``password``, ``protocolVersion`` (``"5"`` by default, or
  ``"3.1.1"``).

Delivery: QoS 1 with manual acks. A message is PUBACKed only after
``outlet.emit`` (or ``outlet.reject``) returned, in arrival order, with up to
``WORKERS`` messages handled at once (see :mod:`events.brokers.mqtt.source`). Decoding
follows the normalization rules (see :mod:`sources.mqtt_decode`); a payload
that cannot become an event goes to the dead letter, and the source goes on.

Failures: a broker that is unreachable or drops the connection ends ``run``
with a retriable error naming the broker (``cannot reach MQTT broker at
host:port: ...``); an ``emit`` that fails ends it with that error. The runtime
starts it again with backoff, and the session brings back everything not acked.
A persistent session exists from the source's first subscription on: messages
published before fnevents ever subscribed with this client id are not kept.

What the broker must be configured for: Mosquitto's ``max_queued_messages``
(default 1000) silently drops QoS 1 messages queued beyond it for a session
whose client is away; raise it to cover the longest outage you expect. For
sessions to survive a broker restart, ``persistence true``.
"""

from __future__ import annotations

import os
import socket
from functools import partial
from typing import Any, ClassVar

from pydantic import ValidationError

from events.brokers.mqtt.settings import MqttSourceSettings, redacted
from events.brokers.mqtt.source import SHARED_PREFIX, MqttReceiver, Received, topic_filter_error
from events.errors import ManifestError
from sources.contract import Outlet, Source, SourceIdentity
from sources.mqtt_decode import message_id, to_event
from sources.normalize import Rejected


class MqttSource(Source):
    kind: ClassVar[str] = "mqtt"

    def __init__(self, identity: SourceIdentity, settings: Any) -> None:
        super().__init__(identity, settings)
        self.topic: str = settings.topic
        self.qos: int = 1 if settings.qos is None else settings.qos
        self.clean_session = bool(settings.cleanSession)
        self.protocol = settings.protocolVersion
        self.client_id = client_id(identity, settings.consumerID, self.topic)
        self._receiver = MqttReceiver(
            self._connection(settings),
            self.client_id,
            self.topic,
            self.qos,
            clean_session=self.clean_session,
            protocol=self.protocol,
        )
        self.address = self._receiver.address

    def _connection(self, settings: Any) -> MqttSourceSettings:
        """Checked settings; a ManifestError names the field (the loader adds where it is)."""
        if error := topic_filter_error(self.topic):
            raise ManifestError(f"topic: {error}")
        if settings.password is not None and settings.username is None:
            raise ManifestError("password: a password needs a username")
        try:
            return MqttSourceSettings(
                url=settings.url,
                caCert=settings.caCert,
                clientCert=settings.clientCert,
                clientKey=settings.clientKey,
                username=settings.username,
                password=settings.password,
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "url"
            text = error["msg"].removeprefix("Value error, ")
            raise ManifestError(text if text.startswith(field) else f"{field}: {text}") from None

    def describe(self) -> str:
        return f"mqtt {self.identity.label} from {redacted(self.settings.url)} topic {self.topic}"

    def notices(self) -> list[str]:
        said = []
        if self.qos == 0:
            said.append(
                "qos 0 is at most once: the broker drops what it cannot hand over at once, "
                "and nothing is kept while fnevents is away; use qos 1 when every message matters"
            )
        elif self.qos == 2:
            said.append(
                "qos 2 is received as qos 1 (at least once): MQTT's QoS 2 hand-off completes "
                "before the event is on the bus, so a crash could lose the message"
            )
        if self.clean_session:
            said.append(
                "cleanSession true: messages published while fnevents is not connected are lost"
            )
        if self.settings.retain is not None:
            said.append("'retain' is a publish flag; a source publishes nothing and ignores it")
        return said

    async def run(self, outlet: Outlet) -> None:
        """Connect, subscribe and hand each message to ``outlet``; raise when the link fails."""
        await self._receiver.run(partial(self._deliver, outlet))

    async def _deliver(self, outlet: Outlet, message: Received) -> None:
        payload = message.payload
        topic = message.topic
        try:
            if topic is None:
                raise Rejected("the topic name is not valid UTF-8")
            event = to_event(
                self.address, topic, payload, message.content_type, message.user_properties
            )
        except Exception as exc:  # noqa: BLE001 - a payload never stops the source
            reason = exc.reason if isinstance(exc, Rejected) else f"{type(exc).__name__}: {exc}"
            raw_topic = topic or message.raw_topic  # the undecodable bytes
            await outlet.reject(payload, reason, message_id(raw_topic, payload))
            return
        await outlet.emit(event)


def client_id(identity: SourceIdentity, consumer_id: str | None, topic: str) -> str:
    """The MQTT client id: ``consumerID`` or OpenFunction's default, per replica if shared."""
    base = consumer_id or f"{identity.namespace}-esc-mqtt-{identity.event}"
    if not topic.startswith(SHARED_PREFIX):
        return base
    replica = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{base}-{replica}"
