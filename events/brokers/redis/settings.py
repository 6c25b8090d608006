"""``pubsub.redis`` settings: Dapr's metadata names, validated at load.

:class:`RedisConnection` holds what every Redis component of Dapr's shares (address,
credentials, TLS, timeouts, client knobs) and builds the client's options; the
bus's :class:`RedisSettings` adds the stream settings, and a trigger's
``state.redis`` condition store (``events.brokers.redis.state``) reuses it as is.

Field names, defaults and duration syntax follow Dapr's component
(``common/component/redis/settings.go`` and ``pubsub/redis``). Three kinds of
field exist here:

- used: connection, stream and redelivery settings this backend honours;
- accepted, no effect: client tuning knobs whose job the core does instead
  (reconnect and retry live in ``events.bus.resilient``), so a Dapr component
  file loads unchanged;
- refused: Dapr features this backend does not implement (cluster, Sentinel,
  client certificates, Entra ID). Setting them is a load error that says so,
  rather than a silent fallback to a plain connection.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from events.bus.settings import BackendSettings, DaprDuration

DEFAULT_PORT = 6379
_NO_EFFECT = "accepted for Dapr compatibility; no effect (reconnect and retry live in the core)"


class RedisConnection(BaseModel):
    """Where a Redis component connects and how: Dapr's shared Redis metadata names.

    Subclasses add their component's own fields; ``component_type`` names the
    component in error messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    component_type: ClassVar[str] = "redis"

    redisHost: str = Field(
        description="the Redis server as 'host:port' (the port defaults to 6379)", min_length=1
    )
    redisUsername: str | None = Field(default=None, description="ACL user name (Redis 6+)")
    redisPassword: str | None = Field(default=None, description="password for AUTH")
    redisDB: int = Field(default=0, ge=0, description="database number selected after connecting")
    enableTLS: bool = Field(default=False, description="connect with TLS")
    insecureSkipTLSVerify: bool = Field(
        default=False, description="with enableTLS: do not verify the server's certificate"
    )
    dialTimeout: DaprDuration = Field(default=5.0, gt=0, description="timeout to connect")
    readTimeout: DaprDuration = Field(
        default=3.0, gt=0, description="timeout waiting for a reply to a command"
    )
    writeTimeout: DaprDuration | None = Field(
        default=None,
        description="accepted for Dapr compatibility; redis-py uses readTimeout for writes too",
    )
    poolSize: int | None = Field(default=None, ge=1, description="most connections kept open")
    redisType: Literal["node", "cluster"] = Field(
        default="node", description="only 'node' is supported (Redis Cluster is not)"
    )
    failover: bool = Field(default=False, description="Redis Sentinel: not supported")
    sentinelMasterName: str | None = Field(
        default=None, description="Redis Sentinel: not supported"
    )
    sentinelUsername: str | None = Field(default=None, description="Redis Sentinel: not supported")
    sentinelPassword: str | None = Field(default=None, description="Redis Sentinel: not supported")
    clientCert: str | None = Field(
        default=None, description="TLS client certificate: not supported"
    )
    clientKey: str | None = Field(default=None, description="TLS client key: not supported")
    useEntraID: bool = Field(default=False, description="Azure Entra ID auth: not supported")
    redisMaxRetries: int | None = Field(default=None, description=_NO_EFFECT)
    redisMinRetryInterval: DaprDuration | None = Field(default=None, description=_NO_EFFECT)
    redisMaxRetryInterval: DaprDuration | None = Field(default=None, description=_NO_EFFECT)
    poolTimeout: DaprDuration | None = Field(default=None, description=_NO_EFFECT)
    minIdleConns: int | None = Field(default=None, description=_NO_EFFECT)
    maxConnAge: DaprDuration | None = Field(default=None, description=_NO_EFFECT)
    idleTimeout: DaprDuration | None = Field(default=None, description=_NO_EFFECT)
    idleCheckFrequency: DaprDuration | None = Field(default=None, description=_NO_EFFECT)

    @field_validator("redisHost")
    @classmethod
    def _one_host(cls, value: str) -> str:
        if "," in value:
            raise ValueError(
                "one 'host:port' is supported; several hosts mean Redis Cluster or Sentinel, "
                f"which fnevents' {cls.component_type} does not support"
            )
        host, _, port = value.strip().rpartition(":")
        if host and not port.isdigit():
            raise ValueError(f"expected 'host:port', got {value!r}")
        return value.strip()

    @field_validator("redisType")
    @classmethod
    def _node_only(cls, value: str) -> str:
        if value != "node":
            raise ValueError("Redis Cluster is not supported; use a single node ('node')")
        return value

    @field_validator("failover", "useEntraID")
    @classmethod
    def _unsupported_switch(cls, value: bool, info) -> bool:
        if value:
            raise ValueError(
                f"'{info.field_name}: true' is not supported by fnevents' {cls.component_type}"
            )
        return value

    @field_validator(
        "sentinelMasterName", "sentinelUsername", "sentinelPassword", "clientCert", "clientKey"
    )
    @classmethod
    def _unsupported_value(cls, value: str | None, info) -> str | None:
        if value:
            raise ValueError(
                f"'{info.field_name}' is not supported by fnevents' {cls.component_type}"
            )
        return value

    @property
    def host(self) -> str:
        host, _, port = self.redisHost.rpartition(":")
        host = host if port.isdigit() and host else self.redisHost
        return host.removeprefix("[").removesuffix("]")  # '[::1]:6379' is host '::1'

    @property
    def port(self) -> int:
        host, _, port = self.redisHost.rpartition(":")
        return int(port) if port.isdigit() and host else DEFAULT_PORT

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def connection_options(self, socket_timeout: float | None) -> dict[str, Any]:
        """Keyword arguments for ``redis.asyncio.Redis``: address, credentials, TLS, timeouts.

        The client never retries by itself: reconnect and backoff live in the core."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.redisDB,
            "username": self.redisUsername,
            "password": self.redisPassword,
            "socket_connect_timeout": self.dialTimeout,
            "socket_timeout": socket_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        if self.enableTLS:
            options["ssl"] = True
            if self.insecureSkipTLSVerify:
                options.update(ssl_cert_reqs="none", ssl_check_hostname=False)
        return options


class RedisSettings(RedisConnection, BackendSettings):
    """Metadata of a ``pubsub.redis`` component (Redis Streams)."""

    component_type: ClassVar[str] = "pubsub.redis"

    processingTimeout: DaprDuration = Field(
        default=60.0,
        ge=0,
        description="how long an entry stays pending with a member before another member "
        "may claim it ('0' disables redelivery of abandoned entries)",
    )
    redeliverInterval: DaprDuration = Field(
        default=15.0,
        ge=0,
        description="how often each member looks for abandoned entries to claim ('0' disables it)",
    )
    queueDepth: int = Field(
        default=100,
        ge=1,
        description="entries read per XREADGROUP and buffered per member ahead of the consumer",
    )
    concurrency: int = Field(
        default=10,
        ge=1,
        description="Dapr's handler workers; accepted, no effect: in fnevents the trigger's "
        "in-flight limit bounds concurrent work",
    )
    maxLenApprox: int | None = Field(
        default=None,
        ge=1,
        description="trim each stream to about this many entries on publish (XADD MAXLEN ~); "
        "entries trimmed before they are acked are lost to slow groups",
    )
    streamTTL: DaprDuration | None = Field(
        default=None,
        gt=0,
        description="trim entries older than this on publish (XADD MINID ~)",
    )
