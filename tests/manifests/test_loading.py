"""Loading rules: fixtures, defaults, lookup order, topics, secrets and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.app.load import load_catalog
from events.app.plans import bus_plan, topic_for
from events.cli.main import main
from events.errors import ManifestErrors
from tests.manifests.documents import BUS, CRON_SOURCE, trigger

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openfunction"


def test_openfunction_fixtures_load_unchanged(capsys) -> None:
    assert main(["validate", "-f", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert "loaded 6 resource(s) from 4 file(s)" in out
    assert (
        "NATS Streaming is end-of-life upstream; using NATS JetStream at "
        "nats://nats.default:4222" in out
    )
    assert "input inputDemo <- topic default-my-eventsource-sample-one" in out
    assert "subscriber 1 when [eventA && eventB] -> topic metrics" in out


def test_fixture_details_survive_loading() -> None:
    catalog = load_catalog([str(FIXTURES)], [])
    source = catalog.get("EventSource", "default", "my-eventsource").resource
    assert source.spec.logLevel == "2"
    kafka = source.spec.kafka["sample-one"]
    assert (kafka.topic, kafka.authRequired) == ("events-sample", False)
    bus = catalog.get("EventBus", "default", "default").resource.spec.natsStreaming
    assert (bus.natsStreamingClusterID, bus.subscriptionType) == ("stan", "queue")
    assert bus.durableSubscriptionName == "ImDurable"


def test_multi_document_file_and_default_namespace(write) -> None:
    catalog = load_catalog([str(write(BUS, CRON_SOURCE, trigger()))], [])
    assert {key for key in catalog.resources} == {
        ("EventBus", "default", "default"),
        ("EventSource", "default", "clock"),
        ("Trigger", "default", "t1"),
    }


def test_directories_are_read_recursively(tmp_path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "bus.yaml").write_text(BUS)
    (tmp_path / "nested" / "source.yml").write_text(CRON_SOURCE)
    (tmp_path / "notes.txt").write_text("not a manifest")
    catalog = load_catalog([str(tmp_path)], [])
    assert len(catalog.resources) == 2


def test_a_configmap_mount_is_read_once(tmp_path) -> None:
    """Kubernetes mounts a ConfigMap as links to a hidden timestamped folder."""
    data = tmp_path / "..2026_12_03_07_00_00.123"
    data.mkdir()
    (data / "bus.yaml").write_text(BUS)
    (data / "source.yaml").write_text(CRON_SOURCE)
    (tmp_path / "..data").symlink_to(data.name)
    for name in ("bus.yaml", "source.yaml"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    catalog = load_catalog([str(tmp_path)], [])
    assert len(catalog.resources) == 2


def test_topic_names_follow_openfunction() -> None:
    assert (
        topic_for("default", "my-eventsource", "sample-one") == "default-my-eventsource-sample-one"
    )


def test_namespaced_eventbus_wins_over_cluster_eventbus(write) -> None:
    cluster = """
apiVersion: events.openfunction.io/v1alpha1
kind: ClusterEventBus
metadata: {name: default}
spec: {component: shared}
"""
    component = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: shared, namespace: team-b}
spec: {type: pubsub.in-memory}
"""
    local = BUS.replace("metadata: {name: default}", "metadata: {name: default, namespace: team-a}")
    catalog = load_catalog([str(write(cluster, component, local))], [])
    assert bus_plan(catalog, "team-a", "default").via == "EventBus default"
    assert bus_plan(catalog, "team-b", "default").via == "ClusterEventBus default"
    assert bus_plan(catalog, "team-b", "default").component.name == "shared"


def test_eventbus_without_broker_settings_is_embedded(write) -> None:
    plan = bus_plan(load_catalog([str(write(BUS))], []), "default", "default")
    assert plan.backend == "pubsub.in-memory"
    assert "using the embedded in-memory bus" in plan.notice


REDIS_COMPONENT = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: eventbus}
spec:
  type: pubsub.redis
  metadata:
  - {name: redisHost, value: "localhost:6379"}
  - name: redisPassword
    secretKeyRef: {name: redis-auth, key: password}
"""


def test_secret_key_ref_resolves_from_the_environment(write, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_AUTH_PASSWORD", "s3cret")
    bus = BUS.replace("spec: {}", "spec: {component: eventbus}")
    plan = bus_plan(load_catalog([str(write(bus, REDIS_COMPONENT))], []), "default", "default")
    assert plan.metadata == {"redisHost": "localhost:6379", "redisPassword": "s3cret"}


def test_secret_key_ref_resolves_from_a_secret_manifest(write, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_AUTH_PASSWORD", raising=False)
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: redis-auth}\n"
        "data: {password: aHVudGVyMg==}\n"
    )
    bus = BUS.replace("spec: {}", "spec: {component: eventbus}")
    plan = bus_plan(
        load_catalog([str(write(bus, REDIS_COMPONENT, secret))], []), "default", "default"
    )
    assert plan.metadata["redisPassword"] == "hunter2"


def test_missing_secret_says_how_to_provide_it(write, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_AUTH_PASSWORD", raising=False)
    bus = BUS.replace("spec: {}", "spec: {component: eventbus}")
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(write(bus, REDIS_COMPONENT))], [])
    message = str(caught.value)
    assert "field 'spec.metadata[1].secretKeyRef'" in message
    assert "set the environment variable REDIS_AUTH_PASSWORD" in message


def test_components_flag_replaces_a_component_of_the_same_name(write, tmp_path) -> None:
    memory = REDIS_COMPONENT.split("spec:")[0] + "spec: {type: pubsub.in-memory}\n"
    bus = BUS.replace("spec: {}", "spec: {component: eventbus}")
    manifests = write(bus, memory, name="app.yaml")
    override = write(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: eventbus}\n"
        "spec: {type: pubsub.kafka, metadata: [{name: brokers, value: 'x:9092'}]}\n",
        name="kafka.yaml",
    )
    catalog = load_catalog([str(manifests)], [str(override)])
    plan = bus_plan(catalog, "default", "default")
    assert plan.backend == "pubsub.kafka"
    assert plan.metadata == {"brokers": "x:9092"}


def test_components_flag_accepts_only_components(write) -> None:
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(write(BUS, name="a.yaml"))], [str(write(CRON_SOURCE, name="b.yaml"))])
    assert "--components accepts only Dapr Components" in str(caught.value)
