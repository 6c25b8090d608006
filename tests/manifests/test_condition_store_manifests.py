"""A Trigger's ``conditionStore``: each mistake is a load error naming the file, the
resource, the field and the fix; ``--components`` replaces the store like a bus's."""

from __future__ import annotations

import pytest
import redis

from events.app.catalog import Catalog
from events.app.load import load_catalog
from events.app.plans import bus_plan
from events.app.runtime import Runtime
from events.brokers.memory.bus import MemoryBus
from events.brokers.redis.state import RedisState
from events.cli.main import main
from events.errors import ManifestErrors
from events.observability.console import Console
from tests.manifests.documents import BUS, CRON_SOURCE, trigger
from triggers.runner import TriggerRunner
from triggers.state import LocalState


def store(component_type: str = "state.redis", **metadata: str) -> str:
    metadata = metadata or {"redisHost": "localhost:6379"}
    items = "".join(f"  - {{name: {k}, value: {v!r}}}\n" for k, v in metadata.items())
    return (
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: conditions}\n"
        f"spec:\n  type: {component_type}\n  metadata:\n{items}"
    )


STORED_TRIGGER = trigger("tick", extra="  conditionStore: conditions\n")


def built_trigger(catalog: Catalog) -> TriggerRunner:
    """The runtime's runner for the one Trigger (nothing connects until it starts)."""
    runtime = Runtime(catalog, Console(quiet=True))
    runtime.buses[bus_plan(catalog, "default", "default").key] = MemoryBus()
    return runtime._build_trigger(catalog.of_kind("Trigger")[0])


def errors_for(*paths) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(p) for p in paths], [])
    return [str(e) for e in caught.value.errors]


def test_validate_shows_where_the_state_is_kept(write, capsys) -> None:
    path = write(BUS, CRON_SOURCE, STORED_TRIGGER, store(redisHost="redis.local:6380"))
    assert main(["validate", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "condition state: state.redis Component conditions at redis.local:6380, "
        "hash fnevents:conditions:default/t1" in out
    )


def test_without_a_store_validate_says_the_state_is_in_process(write, capsys) -> None:
    assert main(["validate", "-f", str(write(BUS, CRON_SOURCE, trigger()))]) == 0
    assert "condition state: in-process (lost on restart" in capsys.readouterr().out


def test_a_missing_component_names_the_field_and_the_fix(write) -> None:
    path = write(BUS, CRON_SOURCE, STORED_TRIGGER)
    (message,) = errors_for(path)
    assert str(path) in message and "Trigger/t1" in message
    assert "field 'spec.conditionStore'" in message
    assert "Component 'conditions' not found" in message
    assert "add a state.redis Component with -f or --components" in message


def test_a_component_of_another_type_is_refused(write) -> None:
    (message,) = errors_for(write(BUS, CRON_SOURCE, STORED_TRIGGER, store("pubsub.redis")))
    assert "field 'spec.conditionStore'" in message
    assert "has type 'pubsub.redis', but a conditionStore must be a state.redis" in message


def test_an_unknown_metadata_name_names_the_component_and_suggests_one(write) -> None:
    bad = store(redisHost="localhost:6379", redisDb="2")
    path = write(BUS, CRON_SOURCE, STORED_TRIGGER, bad)
    (message,) = errors_for(path)
    assert str(path) in message and "Component/conditions" in message
    assert "field 'spec.metadata'" in message
    assert "unknown metadata 'redisDb' for state.redis; did you mean 'redisDB'?" in message
    assert "(the conditionStore of Trigger/t1)" in message


def test_stream_settings_of_the_bus_are_not_state_store_settings(write) -> None:
    bad = store(redisHost="localhost:6379", processingTimeout="1s")
    (message,) = errors_for(write(BUS, CRON_SOURCE, STORED_TRIGGER, bad))
    assert "unknown metadata 'processingTimeout' for state.redis" in message


def test_redis_host_is_required(write) -> None:
    (message,) = errors_for(write(BUS, CRON_SOURCE, STORED_TRIGGER, store(redisDB="1")))
    assert "metadata 'redisHost' is required for state.redis" in message


def test_unsupported_redis_features_are_refused_by_name(write) -> None:
    bad = store(redisHost="localhost:6379", failover="true")
    (message,) = errors_for(write(BUS, CRON_SOURCE, STORED_TRIGGER, bad))
    assert "'failover: true' is not supported by fnevents' state.redis" in message


def test_the_store_is_built_with_the_component_settings(write, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_AUTH_PASSWORD", "s3cret")
    component = store(redisHost="redis.local:6380", redisDB="3") + (
        "  - name: redisPassword\n    secretKeyRef: {name: redis-auth, key: password}\n"
    )
    catalog = load_catalog([str(write(BUS, CRON_SOURCE, STORED_TRIGGER, component))], [])
    runner = built_trigger(catalog)
    assert isinstance(runner.state, RedisState)
    assert runner.state.key == "fnevents:conditions:default/t1"
    settings = runner.state.settings
    assert (settings.address, settings.redisDB, settings.redisPassword) == (
        "redis.local:6380",
        3,
        "s3cret",
    )


def test_a_trigger_without_a_store_keeps_the_state_in_process(write) -> None:
    catalog = load_catalog([str(write(BUS, CRON_SOURCE, trigger()))], [])
    assert isinstance(built_trigger(catalog).state, LocalState)


def test_components_flag_replaces_the_store(write) -> None:
    manifests = write(BUS, CRON_SOURCE, STORED_TRIGGER, store(), name="app.yaml")
    override = write(store(redisHost="elsewhere:7000"), name="store.yaml")
    catalog = load_catalog([str(manifests)], [str(override)])
    assert built_trigger(catalog).state.settings.address == "elsewhere:7000"


def test_components_flag_can_supply_a_missing_store(write) -> None:
    manifests = write(BUS, CRON_SOURCE, STORED_TRIGGER, name="app.yaml")
    override = write(store(), name="store.yaml")
    assert load_catalog([str(manifests)], [str(override)]).of_kind("Trigger")


@pytest.mark.redis
def test_run_stops_at_start_when_the_store_refuses_the_credentials(
    write, redis_broker, capsys
) -> None:
    """The store is checked before the trigger reads anything: a wrong password is one
    clear error at start, not a warning at the first event."""
    admin = redis.Redis.from_url(f"redis://{redis_broker.address}")
    admin.execute_command("ACL", "SETUSER", "cs-start", "on", ">right", "+@all", "~*")
    try:
        wrong = store(redisHost=redis_broker.address, redisUsername="cs-start", redisPassword="x")
        path = write(BUS, CRON_SOURCE, STORED_TRIGGER, wrong)
        assert main(["run", "-f", str(path), "--port", "0", "-q"]) == 1
    finally:
        admin.execute_command("ACL", "DELUSER", "cs-start")
        admin.close()
    err = capsys.readouterr().err
    assert "error: Redis at" in err and "refused the credentials" in err
