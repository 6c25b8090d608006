"""Settings of ``pubsub.mqtt3``: Dapr's metadata names, validated at load.

``url`` carries the address, the transport and the credentials, as in Dapr:
``tcp://[user[:password]@]host[:port]`` (``mqtt://`` is the same) for plain TCP,
``ssl://`` (or ``mqtts://``, ``tcps://``, ``tls://``) for TLS. ``caCert``,
``clientCert`` and ``clientKey`` are PEM text, as Dapr takes them (typically from
a secret), not file paths. WebSocket URLs are not supported.

:class:`MqttSourceSettings` is the same connection for the ``mqtt`` source, whose
OpenFunction schema may give the user name and password apart from the url.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationInfo, field_validator

from events.bus.settings import BackendSettings

PLAIN_SCHEMES = frozenset({"tcp", "mqtt"})
TLS_SCHEMES = frozenset({"ssl", "mqtts", "tcps", "tls"})
DEFAULT_PORTS = {False: 1883, True: 8883}


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, parsed from ``url``."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def redacted(url: str) -> str:
    """``url`` with any password in it replaced by ``***``, for messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostport = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hostport}"


def parse_url(url: str) -> Endpoint:
    """The endpoint in a Dapr MQTT url; raises ValueError saying what is wrong."""
    parts = urlsplit(url.strip())
    shown = redacted(url)
    scheme = parts.scheme.lower()
    if scheme in ("ws", "wss"):
        raise ValueError(f"WebSocket urls are not supported ({shown!r}); use tcp:// or ssl://")
    if scheme not in PLAIN_SCHEMES | TLS_SCHEMES:
        raise ValueError(
            f"expected tcp://host[:port] or ssl://host[:port] (also mqtt://, mqtts://), "
            f"got {shown!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the port in {shown!r} is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"no host in {shown!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"an MQTT url is scheme://host:port, with no path or query: {shown!r}")
    tls = scheme in TLS_SCHEMES
    return Endpoint(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[tls],
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class MqttSettings(BackendSettings):
    """``pubsub.mqtt3`` metadata, by Dapr's names."""

    url: str = Field(
        description="the broker: tcp://[user[:password]@]host[:port] (default port 1883), "
        "or ssl://... for TLS (default port 8883); mqtt:// and mqtts:// are accepted too",
    )
    qos: int = Field(
        default=1,
        description="QoS of published events: 1 (at least once, the default) or 2 (exactly "
        "once to the broker). 0 is rejected: the broker may drop a QoS 0 event, which breaks "
        "the bus's at-least-once delivery. Subscriptions always ask for QoS 1, because "
        "MQTT's QoS 2 hand-off completes before the handler runs",
    )
    retain: bool = Field(
        default=False,
        description="publish with the retain flag, so the broker keeps the last event of each "
        "topic and hands it to every new subscriber (including a group that joins later)",
    )
    cleanSession: bool = Field(
        default=False,
        description="connect group members with a clean session. Not recommended: the broker "
        "then forgets a member's unacked events when it disconnects, and keeps nothing for a "
        "group while none of its members is connected",
    )
    caCert: str | None = Field(
        default=None, description="PEM certificate(s) of the CA that signed the broker's"
    )
    clientCert: str | None = Field(
        default=None, description="PEM client certificate for mutual TLS (with clientKey)"
    )
    clientKey: str | None = Field(
        default=None,
        validate_default=True,
        description="PEM private key of clientCert (unencrypted)",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_url(value)
        return value

    @field_validator("qos", mode="before")
    @classmethod
    def _valid_qos(cls, value: Any) -> Any:
        if str(value).strip() == "0":
            raise ValueError(
                "0 is at most once: the broker may drop events, which breaks the bus's "
                "at-least-once delivery; use 1 (the default) or 2"
            )
        if str(value).strip() not in ("1", "2"):
            raise ValueError(f"expected 1 or 2, got {value!r}")
        return int(str(value).strip())

    @field_validator("caCert", "clientCert")
    @classmethod
    def _needs_tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        url = info.data.get("url")
        if value and url and not parse_url(url).tls:
            shown = redacted(url)
            raise ValueError(f"{info.field_name} needs a TLS url (ssl://host:port), got {shown!r}")
        return value

    @field_validator("clientKey")
    @classmethod
    def _paired(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("clientCert") is None) != (value is None):
            missing = "clientKey" if value is None else "clientCert"
            raise ValueError(f"clientCert and clientKey go together; {missing} is missing")
        return value

    @property
    def endpoint(self) -> Endpoint:
        return parse_url(self.url)

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for ``ssl://`` urls: the system CAs unless ``caCert`` is set."""
        context = ssl.create_default_context(cadata=self.caCert) if self.caCert else None
        context = context or ssl.create_default_context()
        if self.clientCert and self.clientKey:
            _load_client_pair(context, self.clientCert, self.clientKey)
        return context


class MqttSourceSettings(MqttSettings):
    """The bus's connection settings, plus user name and password given apart from the url."""

    username: str | None = None
    password: str | None = None

    @property
    def endpoint(self) -> Endpoint:
        endpoint = parse_url(self.url)
        if self.username is None:
            return endpoint
        return replace(endpoint, username=self.username, password=self.password)


def _load_client_pair(context: ssl.SSLContext, cert: str, key: str) -> None:
    """ssl only loads a certificate chain from files: write them privately, load, delete."""
    fd, path = tempfile.mkstemp(prefix="fnevents-mqtt-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{cert.strip()}\n{key.strip()}\n")
        context.load_cert_chain(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


class TrackedContext:
    """An ``ssl.SSLContext`` stand-in for paho that remembers the sockets it wrapped:
    paho does not close a TLS socket whose handshake fails, so ``connect`` does."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._sockets: list[ssl.SSLSocket] = []

    @property
    def check_hostname(self) -> bool:
        return self._context.check_hostname

    def wrap_socket(self, sock: socket.socket, **options: Any) -> ssl.SSLSocket:
        wrapped = self._context.wrap_socket(sock, **options)
        self._sockets = [s for s in self._sockets if s.fileno() != -1]
        self._sockets.append(wrapped)
        return wrapped

    def close_all(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()
