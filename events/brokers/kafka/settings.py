"""Settings of ``pubsub.kafka`` and ``bindings.kafka``: Dapr's metadata names, validated.

Field names and meanings follow Dapr's Kafka component, with three deliberate
differences (each says so in its description):

- ``initialOffset`` defaults to ``oldest``, not Dapr's ``newest``. A group with no
  committed offset starts at the beginning of each partition, so a new trigger
  never misses an event published after ``subscribe()`` returned, whatever the
  broker answers when asked where a partition ends (Tansu 0.6 answers wrongly
  for multi-record batches); and a committed offset that retention has removed
  resumes at the earliest record kept instead of skipping to the end. The price
  is that a brand-new group first reads what the topic still retains. With
  ``newest``, each partition's end is looked up and committed when it is first
  assigned, before ``subscribe()`` returns, so later events are not missed either
  (Dapr looks it up lazily, which races with publishing, and again on every
  member that takes the partition over before anything was committed).
- ``consumerGroup`` is a prefix: every (group, topic) pair of fnevents gets its
  own Kafka consumer group, so triggers never share work by accident and a
  rebalance on one topic does not disturb another.
- ``maxMessageBytes`` defaults to 4 MiB (the Dapr docs say 1024, sarama uses
  1 MB); the broker's ``message.max.bytes`` must allow what you publish.

Supported ``authType``: ``none``, ``password`` (SASL PLAIN, SCRAM-SHA-256 or
SCRAM-SHA-512; over TLS unless ``disableTls``), ``mtls`` (client certificate)
and ``certificate`` (TLS, server verified with ``caCert``). ``oidc`` and
``awsiam`` are rejected with a clear message. As in Dapr, TLS is off with
``authType: none``.

``bindings.kafka`` (:class:`KafkaBindingSettings`) takes the same connection and
auth fields plus the binding's own. The aiokafka options these settings make are
:mod:`events.brokers.kafka.client`'s; this module imports no client library, so
loading manifests does not pay for importing it (about 70 ms of every start).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from events.bus.settings import BackendSettings, DaprDuration

BINDING_TYPE = "bindings.kafka"
AUTH_TYPES = ("none", "password", "mtls", "certificate")
_UNSUPPORTED_AUTH = ("oidc", "awsiam")
_SASL = {
    "PLAIN": "PLAIN",
    "PLAINTEXT": "PLAIN",
    "SHA-256": "SCRAM-SHA-256",
    "SCRAM-SHA-256": "SCRAM-SHA-256",
    "SHA-512": "SCRAM-SHA-512",
    "SCRAM-SHA-512": "SCRAM-SHA-512",
}


class KafkaSettings(BackendSettings):
    authRequired: bool | None = Field(
        default=None,
        description="deprecated in Dapr (OpenFunction's samples use it): true means "
        "authType password",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_auth(cls, data: Any) -> Any:
        legacy = isinstance(data, dict) and "authType" not in data
        if legacy and str(data.get("authRequired", "")).lower() == "true":
            return {**data, "authType": "password"}
        return data

    brokers: str = Field(description="comma-separated host:port list of bootstrap brokers")
    consumerGroup: str | None = Field(
        default=None,
        description="prefix of the Kafka consumer groups; fnevents uses one group per "
        "(group, topic): '<consumerGroup>.<group>.<topic>' (deviation: Dapr uses one group)",
    )
    clientID: str = Field(default="fnevents", description="client id sent to the brokers")
    authType: str = Field(default="none", description="none | password | mtls | certificate")
    saslUsername: str | None = Field(
        default=None, validate_default=True, description="SASL user (authType: password)"
    )
    saslPassword: str | None = Field(
        default=None, validate_default=True, description="SASL password (authType: password)"
    )
    saslMechanism: str = Field(
        default="PLAIN", description="PLAIN, SHA-256 or SHA-512 (SCRAM); authType: password"
    )
    initialOffset: Literal["oldest", "newest"] = Field(
        default="oldest",
        description="where a group without committed offsets starts (deviation: Dapr's "
        "default is newest; see the module docstring for why oldest)",
    )
    maxMessageBytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="largest record produced, in bytes"
    )
    sessionTimeout: DaprDuration = Field(
        default=10.0, gt=0, description="a member silent this long leaves its group"
    )
    heartbeatInterval: DaprDuration = Field(
        default=3.0, gt=0, description="how often a member heartbeats; below sessionTimeout"
    )
    consumeRetryInterval: DaprDuration = Field(
        default=0.1, ge=0, description="wait before retrying a failed broker request"
    )
    version: str | None = Field(
        default=None,
        description="accepted for Dapr compatibility and not used: aiokafka negotiates the "
        "protocol version with the broker (its api_version option is a no-op since 0.13)",
    )
    disableTls: bool = Field(default=False, description="no TLS even with authType password")
    skipVerify: bool = Field(default=False, description="do not verify the broker's certificate")
    caCert: str | None = Field(default=None, description="PEM CA certificate for the brokers")
    clientCert: str | None = Field(
        default=None, validate_default=True, description="PEM client certificate (authType: mtls)"
    )
    clientKey: str | None = Field(
        default=None, validate_default=True, description="PEM client key (authType: mtls)"
    )
    commitInterval: DaprDuration = Field(
        default=1.0,
        gt=0,
        description="extension: how often acked offsets are committed (as sarama's default)",
    )
    fetchMaxWait: DaprDuration = Field(
        default=0.1,
        gt=0,
        description="extension: longest a fetch waits for records on the broker; Tansu "
        "answers a waiting fetch only at this deadline, so it bounds delivery latency there "
        "(Kafka answers as soon as records arrive)",
    )
    maxPending: int = Field(
        default=10_000,
        ge=1,
        description="extension: events a member holds unacked before it pauses reading",
    )

    @field_validator("brokers")
    @classmethod
    def _brokers(cls, value: str) -> str:
        if not broker_list(value):
            raise ValueError("expected host:port[,host:port...], got an empty list")
        return value

    @field_validator("authType", mode="before")
    @classmethod
    def _auth_type(cls, value: Any) -> str:
        if value in _UNSUPPORTED_AUTH:
            raise ValueError(
                f"authType '{value}' is not supported by fnevents; use one of "
                f"{', '.join(AUTH_TYPES)}"
            )
        if value not in AUTH_TYPES:
            raise ValueError(f"expected one of {', '.join(AUTH_TYPES)}, got {value!r}")
        return value

    @field_validator("saslMechanism")
    @classmethod
    def _sasl_mechanism(cls, value: str) -> str:
        mechanism = _SASL.get(value.upper())
        if mechanism is None:
            raise ValueError(f"expected PLAIN, SHA-256 or SHA-512, got {value!r}")
        return mechanism

    @field_validator("saslUsername", "saslPassword")
    @classmethod
    def _sasl_required(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("authType") == "password" and not value:
            raise ValueError("required when authType is 'password'")
        return value

    @field_validator("clientCert", "clientKey")
    @classmethod
    def _mtls_required(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("authType") == "mtls" and not value:
            raise ValueError("required when authType is 'mtls'")
        return value

    @field_validator("heartbeatInterval")
    @classmethod
    def _heartbeat(cls, value: float, info: ValidationInfo) -> float:
        session = info.data.get("sessionTimeout")
        if session is not None and value >= session:
            raise ValueError(f"must be shorter than sessionTimeout ({session:g}s)")
        return value


def broker_list(brokers: str) -> list[str]:
    return [b.strip() for b in brokers.split(",") if b.strip()]


class KafkaBindingSettings(KafkaSettings):
    """A ``bindings.kafka`` output Component: the bus's connection fields and its own."""

    publishTopic: str | None = Field(
        default=None, description="the topic sends go to, unless the output names one"
    )
    topics: str | None = Field(default=None, description="input side; not used by outputs")
    direction: str | None = Field(default=None, description="input, output or both")

    @field_validator("direction")
    @classmethod
    def _output_direction(cls, value: str | None) -> str | None:
        if value is not None and "output" not in {d.strip() for d in value.split(",")}:
            raise ValueError(f"is {value!r}; an output binding needs 'output' in it")
        return value
