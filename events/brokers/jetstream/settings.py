"""The metadata of Dapr's ``pubsub.jetstream`` component, as fnevents reads it.

Field names are Dapr's (``components-contrib/pubsub/jetstream/metadata.go``), so a
Dapr Component file loads unchanged. Where fnevents cannot honour a value without
breaking at-least-once delivery (``ackPolicy`` other than ``explicit``) or cannot
honour it at all (``rateLimit``, a push-consumer setting), loading fails with the
reason instead of silently ignoring it. Settings that only shape Dapr's push
delivery (``queueGroupName``, ``concurrency``, ``flowControl``) are accepted and
have no effect: fnevents reads with pull consumers, members of a group share one
durable consumer, and concurrency is the consumer's (the trigger's in-flight limit).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from events.bus.settings import BackendSettings, DaprDuration


def _comma_list(value: Any) -> Any:
    """Dapr metadata values are strings: ``"1s,5s,30s"`` is a list of three durations."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _both_or_neither(info: ValidationInfo, value: Any, partner: str) -> None:
    """Fail on this field (so the error names it) when exactly one of a pair is set."""
    other = info.data.get(partner)
    if bool(value) != bool(other):
        missing, given = (partner, info.field_name) if value else (info.field_name, partner)
        raise ValueError(f"'{missing}' is required with '{given}' (set both or neither)")


def _start_with_policy(info: ValidationInfo, value: Any, policy: str) -> None:
    """startSequence goes with deliverPolicy 'sequence', startTime with 'time'."""
    chosen = info.data.get("deliverPolicy")
    if chosen is None:  # deliverPolicy itself was invalid; that error is reported
        return
    if value is None and chosen == policy:
        raise ValueError(f"deliverPolicy '{policy}' needs '{info.field_name}'")
    if value is not None and chosen != policy:
        raise ValueError(f"'{info.field_name}' needs deliverPolicy '{policy}' (it is '{chosen}')")


class JetStreamSettings(BackendSettings):
    """``spec.metadata`` of a ``pubsub.jetstream`` Component (Dapr's names)."""

    natsURL: str = Field(
        description="NATS server URL, e.g. nats://localhost:4222 (comma-separated for several)",
        min_length=1,
    )
    name: str = Field(
        default="fnevents - pubsub.jetstream", description="the connection name NATS shows"
    )
    streamName: str | None = Field(
        default=None,
        description="put every topic in this one stream (created if missing; a topic that is "
        "not among its subjects is added). Unset: the stream already holding the topic's "
        "subject, else a stream per topic named after it",
    )
    durableName: str | None = Field(
        default=None,
        description="prefix of the durable consumer names; the consumer of group G is "
        "'<durableName>-G' (just 'G' when unset)",
    )
    queueGroupName: str | None = Field(
        default=None,
        description="accepted for Dapr compatibility, no effect: members of a group share "
        "one durable pull consumer, which is what a queue group does for Dapr",
    )
    deliverPolicy: Literal["all", "last", "new", "sequence", "time"] = Field(
        default="all", description="where a new group's consumer starts in the stream"
    )
    startSequence: int | None = Field(
        default=None,
        ge=1,
        description="first stream sequence, with deliverPolicy 'sequence'",
        validate_default=True,
    )
    startTime: int | None = Field(
        default=None,
        ge=0,
        description="start time in Unix seconds, with deliverPolicy 'time'",
        validate_default=True,
    )
    ackPolicy: Literal["explicit", "all", "none"] = Field(
        default="explicit",
        description="only 'explicit' is accepted: each event is acked on its own, after its "
        "handler succeeded ('none' loses failed events, 'all' acks events still in flight)",
    )
    ackWait: DaprDuration | None = Field(
        default=None,
        gt=0,
        description="redeliver an unacked event after this long (server default 30s); "
        "this is how an event held by a member that died goes to another member",
    )
    maxDeliver: int | None = Field(
        default=None,
        ge=1,
        description="the server stops delivering an event after this many attempts. Leave "
        "unset so fnevents' own limit sends poison events to the dead-letter topic",
    )
    backOff: Annotated[list[DaprDuration], BeforeValidator(_comma_list)] | None = Field(
        default=None,
        description="redelivery delays after missed acks, e.g. '1s,5s,30s' "
        "(needs maxDeliver greater than their number)",
    )
    maxAckPending: int | None = Field(
        default=None, ge=1, description="unacked events per group (server default 1000)"
    )
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="replicas of the consumer (and of a stream fnevents creates)",
    )
    memoryStorage: bool = Field(default=False, description="keep consumer state in memory")
    rateLimit: int = Field(
        default=0,
        ge=0,
        description="not supported: it limits push consumers, fnevents reads with pull "
        "consumers; the trigger's in-flight limit bounds the rate instead",
    )
    heartbeat: DaprDuration | None = Field(
        default=None,
        gt=0,
        description="idle heartbeat of a waiting pull request (default 5s); two missed "
        "heartbeats restart the pull",
    )
    flowControl: bool = Field(
        default=False, description="accepted for Dapr compatibility, no effect on pull consumers"
    )
    domain: str | None = Field(default=None, description="JetStream domain (leaf nodes)")
    apiPrefix: str | None = Field(
        default=None, description="JetStream API prefix (imported from another account)"
    )
    concurrency: Literal["single", "parallel"] = Field(
        default="single",
        description="accepted for Dapr compatibility, no effect: how many events run at "
        "once is up to the consumer of the subscription",
    )
    jwt: str | None = Field(default=None, description="user JWT (with seedKey)")
    seedKey: str | None = Field(
        default=None, description="user nkey seed (with jwt)", validate_default=True
    )
    token: str | None = Field(default=None, description="token authentication")
    tls_client_cert: str | None = Field(
        default=None, description="client certificate file (with tls_client_key)"
    )
    tls_client_key: str | None = Field(
        default=None,
        description="client key file (with tls_client_cert)",
        validate_default=True,
    )

    @field_validator("seedKey")
    @classmethod
    def _jwt_pair(cls, value: str | None, info: ValidationInfo) -> str | None:
        _both_or_neither(info, value, "jwt")
        return value

    @field_validator("tls_client_key")
    @classmethod
    def _tls_pair(cls, value: str | None, info: ValidationInfo) -> str | None:
        _both_or_neither(info, value, "tls_client_cert")
        return value

    @field_validator("ackPolicy")
    @classmethod
    def _explicit_only(cls, value: str) -> str:
        if value != "explicit":
            effect = {
                "none": "the server forgets an event as soon as it is sent, so one whose "
                "handler fails is lost",
                "all": "one ack also acks every earlier event, including ones still being "
                "handled, so a failure there is lost",
            }[value]
            raise ValueError(
                f"ackPolicy '{value}' is not supported: {effect}; fnevents delivers at least "
                f"once and needs 'explicit' (the default)"
            )
        return value

    @field_validator("rateLimit")
    @classmethod
    def _no_rate_limit(cls, value: int) -> int:
        if value:
            raise ValueError(
                "rateLimit applies to push consumers and fnevents reads with pull consumers; "
                "remove it (a trigger's in-flight limit bounds how fast it takes events)"
            )
        return value

    @field_validator("startSequence")
    @classmethod
    def _sequence_with_policy(cls, value: int | None, info: ValidationInfo) -> int | None:
        _start_with_policy(info, value, "sequence")
        return value

    @field_validator("startTime")
    @classmethod
    def _time_with_policy(cls, value: int | None, info: ValidationInfo) -> int | None:
        _start_with_policy(info, value, "time")
        return value

    @field_validator("backOff")
    @classmethod
    def _backoff_needs_max_deliver(
        cls, value: list[float] | None, info: ValidationInfo
    ) -> list[float] | None:
        if not value:
            return None
        if any(delay <= 0 for delay in value):
            raise ValueError("every backOff delay must be positive")
        max_deliver = info.data.get("maxDeliver")
        if max_deliver is None or max_deliver <= len(value):
            raise ValueError(
                f"backOff with {len(value)} delays needs maxDeliver greater than {len(value)} "
                f"(the server requires it)"
            )
        return value

    @field_validator("apiPrefix")
    @classmethod
    def _one_api_route(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and info.data.get("domain"):
            raise ValueError("set domain or apiPrefix, not both")
        return value
