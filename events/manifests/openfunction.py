"""OpenFunction Events kinds (``events.openfunction.io/v1alpha1``), field for field.

Field names and types follow OpenFunction's Go types so its manifests load
unchanged. fnevents' own additions are marked "extension" and documented in
the README; they are all optional.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from events.errors import quote, shorten
from events.manifests.common import Duration, Metadata, Model, SinkSpec
from events.manifests.extensions import DeliverySpec, FilterSpec
from events.manifests.identifiers import check_input_name

API_VERSION = "events.openfunction.io/v1alpha1"
DEFAULT_CONDITION_WINDOW = 60.0
_EVENT_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


class ScaleOption(Model):
    """KEDA scaling hints. Accepted for compatibility; used by the Helm chart, not at runtime."""

    model_config = Model.model_config | {"extra": "allow"}

    pollingInterval: int | None = None
    cooldownPeriod: int | None = None
    minReplicaCount: int | None = None
    maxReplicaCount: int | None = None
    advanced: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    authRef: dict[str, Any] | None = None
    consumerGroup: str | None = None
    topic: str | None = None
    lagThreshold: str | None = None


class KafkaSpec(Model):
    brokers: str
    authRequired: bool
    topic: str | None = None
    saslUsername: str | None = None
    saslPassword: str | None = None
    maxMessageBytes: int | None = None
    scaleOption: ScaleOption | None = None
    # extensions
    consumerGroup: str | None = Field(
        default=None, description="extension: default {namespace}-esc-kafka-{event}"
    )
    saslMechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    tls: bool = Field(default=False, description="extension: connect with TLS")
    caCert: str | None = Field(default=None, description="extension: PEM CA certificate")
    clientCert: str | None = Field(default=None, description="extension: PEM client certificate")
    clientKey: str | None = Field(default=None, description="extension: PEM client key")
    initialOffset: Literal["oldest", "newest"] = Field(
        default="newest", description="extension: where a new consumer group starts"
    )
    sessionTimeout: Duration | None = Field(
        default=None,
        gt=0,
        description="extension: the consumer group's session timeout (default 10s)",
    )


class CronSpec(Model):
    schedule: str


class MQTTSpec(Model):
    url: str
    topic: str
    consumerID: str | None = None
    qos: int | None = Field(default=None, ge=0, le=2)
    retain: bool | None = None
    cleanSession: bool | None = None
    caCert: str | None = None
    clientCert: str | None = None
    clientKey: str | None = None
    # extensions
    username: str | None = Field(default=None, description="extension: MQTT user name")
    password: str | None = Field(default=None, description="extension: MQTT password")
    protocolVersion: Literal["3.1.1", "5"] = Field(
        default="5", description="extension: MQTT protocol; 5 carries CloudEvents user properties"
    )


class RedisSpec(Model):
    redisHost: str
    redisPassword: str
    enableTLS: bool | None = None
    failover: bool | None = None
    sentinelMasterName: str | None = None
    redeliverInterval: str | None = None
    processingTimeout: str | None = None
    redisType: str | None = None
    redisDB: int | None = None
    redisMaxRetries: int | None = None
    redisMinRetryInterval: str | None = None
    redisMaxRetryInterval: str | None = None
    dialTimeout: str | None = None
    readTimeout: str | None = None
    writeTimeout: str | None = None
    poolSize: int | None = None
    poolTimeout: str | None = None
    maxConnAge: str | None = None
    minIdleConns: int | None = None
    idleCheckFrequency: str | None = None
    idleTimeout: str | None = None
    # extensions: what to read (OpenFunction's redis source never received anything)
    stream: str | None = Field(default=None, description="extension: a Redis Stream to read")
    channel: str | None = Field(
        default=None, description="extension: a Pub/Sub channel or pattern (at most once)"
    )
    consumerGroup: str | None = Field(
        default=None, description="extension: default {namespace}-esc-redis-{event}"
    )

    @model_validator(mode="after")
    def _one_input(self) -> RedisSpec:
        if (self.stream is None) == (self.channel is None):
            raise ValueError(
                "a redis event reads exactly one of 'stream' (a Redis Stream, at least once) "
                "or 'channel' (Pub/Sub, at most once)"
            )
        return self


class HTTPSpec(Model):
    """extension: an HTTP endpoint devices and functions POST events to."""

    port: int = Field(ge=1, le=65535)
    host: str = Field(default="0.0.0.0", description="the address to listen on")
    path: str = Field(default="/", pattern=r"^/")
    bearerToken: str | None = Field(
        default=None, description="when set, requests must send 'Authorization: Bearer <token>'"
    )
    maxBodyBytes: int = Field(default=1024 * 1024, ge=1, description="larger bodies get 413")


SOURCE_KINDS = ("cron", "kafka", "mqtt", "redis", "http")


class EventSourceSpec(Model):
    eventBus: str | None = None
    sink: SinkSpec | None = None
    deadLetterSink: SinkSpec | None = Field(
        default=None,
        description="extension: where events go when the sink keeps failing, and rejected "
        "input when there is no eventBus",
    )
    delivery: DeliverySpec | None = Field(
        default=None, description="extension: retry policy and HTTP mode for 'sink'"
    )
    kafka: dict[str, KafkaSpec] = Field(default_factory=dict)
    cron: dict[str, CronSpec] = Field(default_factory=dict)
    redis: dict[str, RedisSpec] = Field(default_factory=dict)
    mqtt: dict[str, MQTTSpec] = Field(default_factory=dict)
    http: dict[str, HTTPSpec] = Field(
        default_factory=dict, description="extension: HTTP ingest endpoints"
    )
    build: dict[str, Any] | None = Field(
        default=None, description="OpenFunction's image build settings; not used locally"
    )
    logLevel: str = "1"

    @model_validator(mode="after")
    def _bus_or_sink_and_events(self) -> EventSourceSpec:
        if not self.eventBus and self.sink is None:
            raise ValueError("an EventSource needs 'eventBus', 'sink', or both")
        names = [name for kind in SOURCE_KINDS for name in getattr(self, kind)]
        if not names:
            raise ValueError(f"an EventSource needs at least one event under {SOURCE_KINDS}")
        for name in names:
            if not _EVENT_NAME.fullmatch(name):
                raise ValueError(
                    f"event name {quote(name)} must be letters, digits, '-', '_' or '.' "
                    "(it becomes part of a topic name)"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"event name(s) {shorten(str(duplicates), 300)} appear under more than one "
                "source kind; each event name maps to one topic, so names must be unique"
            )
        return self

    def events(self) -> list[tuple[str, str, Model]]:
        """Every ``(kind, event name, settings)`` in this EventSource."""
        return [
            (kind, name, settings)
            for kind in SOURCE_KINDS
            for name, settings in getattr(self, kind).items()
        ]


class NatsStreamingSpec(Model):
    natsURL: str
    natsStreamingClusterID: str
    subscriptionType: Literal["topic", "queue"]
    durableSubscriptionName: str
    ackWaitTime: str | None = None
    maxInFlight: int | None = None
    deliverNew: bool | None = None
    startAtSequence: int | None = None
    startWithLastReceived: bool | None = None
    deliverAll: bool | None = None
    startAtTimeDelta: str | None = None
    startAtTime: str | None = None
    startAtTimeFormat: str | None = None
    consumerID: str | None = None
    scaleOption: ScaleOption | None = None


class EventBusSpec(Model):
    topic: str | None = Field(default=None, description="documented by OpenFunction but unused")
    natsStreaming: NatsStreamingSpec | None = None
    component: str | None = Field(
        default=None, description="extension: the name of a Dapr pub/sub Component to use"
    )
    sidecar: bool = Field(
        default=False,
        description="extension: reach 'component' through a Dapr sidecar (DAPR_GRPC_ENDPOINT, "
        "DAPR_API_TOKEN, ...) instead of connecting to the broker directly",
    )

    @model_validator(mode="after")
    def _one_backend(self) -> EventBusSpec:
        if self.natsStreaming is not None and self.component is not None:
            raise ValueError("set 'natsStreaming' or 'component', not both")
        if self.sidecar and not self.component:
            raise ValueError("'sidecar: true' needs 'component': the sidecar's pub/sub name")
        return self


class TriggerInput(Model):
    """One input of a Trigger: an EventSource's event ('eventSource' and 'event'), or, as an
    extension, a topic of the Trigger's EventBus ('topic')."""

    # OpenFunction's Input has only namespace, eventSource and event, so its Triggers cannot
    # read what a Dapr app or a Function's output publishes; 'topic' is what lets them.

    eventSource: str | None = Field(
        default=None, description="the EventSource's name (with 'event'; or 'topic' instead)"
    )
    event: str | None = Field(default=None, description="the event's name in that EventSource")
    namespace: str | None = Field(
        default=None, description="the EventSource's namespace (default: the Trigger's)"
    )
    topic: str | None = Field(
        default=None,
        min_length=1,
        description="extension: a topic of the Trigger's EventBus to read as it is (what a "
        "Dapr app or a Function's output publishes), instead of 'eventSource' and 'event'",
    )
    filter: FilterSpec | None = Field(
        default=None,
        description="extension: only events that pass count for conditions and are delivered",
    )

    @model_validator(mode="after")
    def _one_origin(self) -> TriggerInput:
        named = [f for f in ("eventSource", "event", "namespace") if getattr(self, f) is not None]
        if self.topic is not None:
            if named:
                raise ValueError(
                    f"'topic' excludes {_listed(named)}: an input reads either a bus topic "
                    "('topic', extension) or an EventSource's event ('eventSource' and "
                    f"'event', optionally 'namespace'); remove {_listed(named)}, or 'topic'"
                )
            return self
        if self.eventSource is None and self.event is None:
            raise ValueError(
                "an input needs 'eventSource' and 'event' (an EventSource's event), or "
                "'topic' (extension: a topic of the Trigger's EventBus)"
            )
        for given, missing in (("eventSource", "event"), ("event", "eventSource")):
            if getattr(self, missing) is None:
                raise ValueError(f"'{given}' needs '{missing}' too (or use 'topic' alone)")
        return self

    def origin(self, namespace: str) -> tuple[str, str, str] | None:
        """``(namespace, eventSource, event)`` this input reads; None for a topic input."""
        if self.eventSource is None or self.event is None:
            return None
        return (self.namespace or namespace, self.eventSource, self.event)


def _listed(fields: list[str]) -> str:
    return " and ".join(f"'{f}'" for f in fields)


class Subscriber(Model):
    condition: str
    sink: SinkSpec | None = None
    deadLetterSink: SinkSpec | None = None
    topic: str | None = None
    deadLetterTopic: str | None = None
    delivery: DeliverySpec | None = Field(
        default=None, description="extension: retry policy, overriding the Trigger's"
    )
    filter: FilterSpec | None = Field(
        default=None, description="extension: this subscriber receives only events that pass"
    )
    replyTopic: str | None = Field(
        default=None,
        description="extension: where a CloudEvent that the sink answers with is published "
        "(default {namespace}-{trigger}-reply)",
    )
    maxInFlight: int = Field(
        default=64,
        ge=1,
        le=10000,
        description="extension: requests to this subscriber's sink at once; beyond it, the "
        "trigger stops reading the bus",
    )

    @model_validator(mode="after")
    def _has_target(self) -> Subscriber:
        if self.sink is None and not self.topic:
            raise ValueError("a subscriber needs 'sink', 'topic', or both")
        return self


class TriggerSpec(Model):
    eventBus: str
    inputs: dict[str, TriggerInput] = Field(min_length=1)
    subscribers: list[Subscriber] = Field(min_length=1)
    logLevel: str = "1"
    conditionWindow: Duration = Field(
        default=DEFAULT_CONDITION_WINDOW,
        description="extension: how long an input stays true after its last event",
    )
    delivery: DeliverySpec | None = Field(
        default=None, description="extension: default retry policy for every subscriber"
    )
    maxDeliveries: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="extension: bus deliveries of one message before it is dead-lettered",
    )
    orderBy: Literal["partitionkey", "subject"] | None = Field(
        default=None,
        description="extension: deliver events with the same value of this attribute one at "
        "a time, in bus order; different values proceed in parallel",
    )
    conditionStore: str | None = Field(
        default=None,
        description="extension: a Dapr state store Component (state.redis) that keeps "
        "condition state, so it survives restarts and replicas share it",
    )

    @field_validator("inputs")
    @classmethod
    def _identifier_names(cls, inputs: dict[str, TriggerInput]) -> dict[str, TriggerInput]:
        for name in inputs:
            check_input_name(name)
        return inputs


class _Resource(Model):
    model_config = Model.model_config | {"extra": "ignore"}  # tolerate 'status' and friends

    apiVersion: Literal["events.openfunction.io/v1alpha1"]
    metadata: Metadata


class EventSource(_Resource):
    kind: Literal["EventSource"]
    spec: EventSourceSpec


class EventBus(_Resource):
    kind: Literal["EventBus"]
    spec: EventBusSpec = Field(default_factory=EventBusSpec)


class ClusterEventBus(_Resource):
    kind: Literal["ClusterEventBus"]
    spec: EventBusSpec = Field(default_factory=EventBusSpec)


class Trigger(_Resource):
    kind: Literal["Trigger"]
    spec: TriggerSpec
