"""KEDA scalers: what each consuming role's ``ScaledObject`` watches, or why it has none.

Every name a scaler carries (stream, topic, consumer group, JetStream consumer) is the
one ``fnevents run`` uses, computed by the runtime's own code: the bus topic and group
from :mod:`events.app.plans`, then the broker package's mapping of that group
(``events.brokers.kafka.client.group_id``, the JetStream ``Stream.consumer_name`` and
``safe_name``), and for a source its Source object (``sources.registry.make_source``).

Which brokers scale, and how:

- **Redis Streams** (``redis-streams``): the group's ``lagCount`` (XINFO GROUPS lag,
  Redis 7 or later; on 6.2 set ``scaleOption.metadata.pendingEntriesCount`` instead).
- **Kafka** (``kafka``): ``lagThreshold`` of the group fnevents joins for that topic.
- **NATS JetStream** (``nats-jetstream``): ``lagThreshold`` of the durable consumer on the
  stream fnevents creates for the topic (``safe_name(topic)``, or ``streamName``). The
  monitoring endpoint is the server's host on port 8222 unless
  ``scaleOption.metadata.natsServerMonitoringEndpoint`` says otherwise. A stream an
  operator made beforehand for the subject has its own name: set ``streamName``.
- **MQTT**: no ScaledObject, one replica. KEDA has no MQTT scaler (kedacore/keda#1282);
  fnevents cannot measure an MQTT backlog either (the protocol does not say what a broker
  queues for a session, so ``fnevents_backlog`` has no MQTT series to scale on); and the
  bus's client ids are per ``consumerID``, so two replicas would take each other's
  connections over.
- **Dapr sidecar**: no ScaledObject: the group is Dapr's (its ``consumerID``), which
  fnevents does not name; fixed replicas (``minReplicaCount``), which share the work.
- **cron** sources, Redis **channel** sources and MQTT sources without ``$share/``: one
  replica, since every replica would fire or receive the same events (duplicates are
  recognisable by id, but still duplicates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from events.brokers.registry import bus_settings
from events.bus.plan import JETSTREAM, SIDECAR, BusPlan
from events.manifests.openfunction import ScaleOption

REDIS, KAFKA, MQTT = "pubsub.redis", "pubsub.kafka", "pubsub.mqtt3"
NATS_MONITORING_PORT = 8222
KEDA_MQTT_ISSUE = "kedacore/keda#1282"


@dataclass(frozen=True)
class Bounds:
    """A ScaledObject's replica range and timing, from ``scaleOption`` or the defaults."""

    min_replicas: int = 1
    max_replicas: int = 10
    polling_interval: int = 30
    cooldown_period: int = 300
    lag: str = "10"
    metadata: Mapping[str, str] = field(default_factory=dict)
    advanced: Mapping[str, Any] | None = None


def bounds_from(option: ScaleOption | None) -> Bounds:
    """OpenFunction's ``scaleOption`` over the defaults (min 1, max 10, 30 s, 300 s, lag 10)."""
    if option is None:
        return Bounds()
    base = Bounds()
    return Bounds(
        min_replicas=_given(option.minReplicaCount, base.min_replicas),
        max_replicas=_given(option.maxReplicaCount, base.max_replicas),
        polling_interval=_given(option.pollingInterval, base.polling_interval),
        cooldown_period=_given(option.cooldownPeriod, base.cooldown_period),
        lag=option.lagThreshold or base.lag,
        metadata=dict(option.metadata or {}),
        advanced=option.advanced,
    )


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


@dataclass(frozen=True)
class Scaler:
    """One KEDA trigger (``type`` and ``metadata``), or the reason a role gets none and
    stays at one replica (``single``: more replicas would be wrong, not just unscaled)."""

    trigger: dict[str, Any] | None = None
    reason: str | None = None
    single: bool = False
    warnings: tuple[str, ...] = ()


def bus_scaler(plan: BusPlan, topic: str, group: str, bounds: Bounds) -> Scaler:
    """The scaler of ``group`` reading ``topic`` on the bus of ``plan``."""
    if plan.backend == SIDECAR:
        return Scaler(
            reason=f"{plan.via} goes through a Dapr sidecar, whose consumer group is Dapr's "
            "(its consumerID), so there is nothing fnevents can point KEDA at; replicas "
            "stay at minReplicaCount and share the work"
        )
    if plan.backend == MQTT:
        return Scaler(reason=_mqtt_bus_reason(plan), single=True)
    settings = bus_settings(plan)
    if plan.backend == REDIS:
        metadata = _redis(settings, topic, group, bounds)
        return _scaler("redis-streams", metadata, bounds, _redis_warnings(settings, plan))
    if plan.backend == KAFKA:
        from events.brokers.kafka.client import group_id
        from events.brokers.kafka.settings import broker_list

        metadata = {
            "bootstrapServers": ",".join(broker_list(settings.brokers)),
            "topic": topic,
            "consumerGroup": group_id(settings, group, topic),
            "lagThreshold": bounds.lag,
        }
        return _scaler("kafka", metadata, bounds, _kafka_warnings(settings, plan))
    if plan.backend == JETSTREAM:
        return _scaler("nats-jetstream", _jetstream(settings, topic, group, bounds), bounds)
    return Scaler(reason=f"{plan.via}: KEDA has no scaler for {plan.backend}", single=True)


def source_scaler(kind: str, source: Any, bounds: Bounds) -> Scaler:
    """The scaler of one event of an EventSource (``source`` is the runtime's Source)."""
    label = f"{kind} event {source.identity.label}"
    if kind == "cron":
        return Scaler(
            reason=f"{label}: every replica of a cron source fires every tick, so more "
            "than one would publish each event again (same id, still a duplicate)",
            single=True,
        )
    if kind == "kafka":
        from events.brokers.kafka.settings import broker_list

        metadata = {
            "bootstrapServers": ",".join(broker_list(source.brokers)),
            "topic": source.topic,
            "consumerGroup": source.group,
            "lagThreshold": bounds.lag,
        }
        return _scaler("kafka", metadata, bounds)
    if kind == "redis" and source.stream is not None:
        metadata = _redis(source.redis, source.stream, source.group, bounds)
        return _scaler("redis-streams", metadata, bounds)
    if kind == "redis":
        return Scaler(
            reason=f"{label} reads the Pub/Sub channel {source.channel}: every replica "
            "would receive every message",
            single=True,
        )
    if kind == "mqtt":
        return _mqtt_source(label, source)
    return Scaler()  # http: stateless, any number of replicas, no backlog to scale on


def _mqtt_source(label: str, source: Any) -> Scaler:
    shared = source.settings.topic.startswith("$share/")
    why = f"KEDA has no MQTT scaler ({KEDA_MQTT_ISSUE}) and MQTT cannot say what waits"
    if shared:
        return Scaler(reason=f"{label}: {why}; replicas stay at minReplicaCount")
    return Scaler(
        reason=f"{label} subscribes to {source.settings.topic} without '$share/': every "
        f"replica would receive every message; {why}",
        single=True,
    )


def _mqtt_bus_reason(plan: BusPlan) -> str:
    return (
        f"{plan.via} is on MQTT: KEDA has no MQTT scaler ({KEDA_MQTT_ISSUE}), MQTT cannot "
        "say what a broker queues for a session (so fnevents_backlog has no MQTT series), "
        "and replicas of one consumerID take each other's connections over"
    )


def _redis(settings: Any, stream: str, group: str, bounds: Bounds) -> dict[str, str]:
    metadata = {
        "address": settings.address,
        "stream": stream,
        "consumerGroup": group,
        "lagCount": bounds.lag,
    }
    if settings.redisDB:
        metadata["databaseIndex"] = str(settings.redisDB)
    if settings.enableTLS:
        metadata["enableTLS"] = "true"
    return metadata


def _redis_warnings(settings: Any, plan: BusPlan) -> tuple[str, ...]:
    if not settings.redisPassword:
        return ()
    return (
        f"{plan.via}: Redis needs a password; give the ScaledObject a KEDA "
        "TriggerAuthentication with it (fnevents render copies no secret into scaler objects)",
    )


def _kafka_warnings(settings: Any, plan: BusPlan) -> tuple[str, ...]:
    if settings.authType == "none":
        return ()
    return (
        f"{plan.via}: Kafka authType {settings.authType}; give the ScaledObject a KEDA "
        "TriggerAuthentication (fnevents render copies no secret into scaler objects)",
    )


def _jetstream(settings: Any, topic: str, group: str, bounds: Bounds) -> dict[str, str]:
    from events.brokers.jetstream.streams import Stream, safe_name

    if settings.streamName:
        stream = Stream(settings.streamName, shared=True)
    else:
        stream = Stream(safe_name(topic), shared=False)
    host = urlsplit(settings.natsURL.split(",")[0].strip()).hostname or "localhost"
    return {
        "natsServerMonitoringEndpoint": f"{host}:{NATS_MONITORING_PORT}",
        "account": "$G",
        "stream": stream.name,
        "consumer": stream.consumer_name(group, topic, settings.durableName),
        "lagThreshold": bounds.lag,
    }


#: Scaler metadata that names what fnevents reads: scaleOption.metadata may not change it.
_NAMES = ("stream", "consumerGroup", "topic", "consumer")


def _scaler(
    kind: str, metadata: dict[str, str], bounds: Bounds, warnings: tuple[str, ...] = ()
) -> Scaler:
    """The trigger, with ``scaleOption.metadata`` added (names excepted: those are the
    runtime's, and a different one would watch a group nobody reads)."""
    notes = list(warnings)
    for key, value in bounds.metadata.items():
        if key in _NAMES and metadata.get(key) not in (None, value):
            notes.append(
                f"scaleOption.metadata.{key} {value!r} ignored: fnevents reads "
                f"{metadata[key]!r}, and KEDA must watch that"
            )
            continue
        metadata[key] = str(value)
    return Scaler(trigger={"type": kind, "metadata": metadata}, warnings=tuple(notes))


def scaled_object(name: str, namespace: str, labels: dict[str, str], spec: dict) -> dict:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"scaleTargetRef": {"name": name}, **spec},
    }


def scaled_object_spec(bounds: Bounds, triggers: list[dict[str, Any]]) -> dict[str, Any]:
    """A ScaledObject's spec (without its target), as the values file carries it."""
    spec: dict[str, Any] = {
        "minReplicaCount": bounds.min_replicas,
        "maxReplicaCount": bounds.max_replicas,
        "pollingInterval": bounds.polling_interval,
        "cooldownPeriod": bounds.cooldown_period,
    }
    if bounds.advanced:
        spec["advanced"] = dict(bounds.advanced)
    spec["triggers"] = triggers
    return spec
