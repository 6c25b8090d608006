"""Plain errors, before any broker is contacted: buses that cannot keep dead letters for
another process, and triggers, buses or topics the manifests do not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.cli.main import main
from tests.deadletters.conftest import run_cli
from tests.manifests import documents

pytestmark = pytest.mark.memory


def manifests(tmp_path: Path, component_type: str, **metadata: str) -> str:
    path = tmp_path / "app.yaml"
    trigger = documents.hourly_trigger("orders", "http://127.0.0.1:9/")
    path.write_text(documents.bus(component_type, **metadata) + trigger)
    return str(path)


async def fails(*args: str) -> str:
    status, out, err = await run_cli("deadletters", *args)
    assert status == 1, out + err
    assert out == "" and err.startswith("error: ") and "Traceback" not in err
    return err


async def test_the_embedded_bus_explains_and_names_what_works(tmp_path) -> None:
    path = manifests(tmp_path, "pubsub.in-memory")
    for action in ("list", "replay"):
        err = await fails(action, "-f", path, "--trigger", "orders")
        assert "embedded in-memory bus" in err and "lives inside `fnevents run`" in err
        assert "Redis, Kafka or NATS JetStream" in err and "deadLetterSink" in err


async def test_mqtt_explains_why_not(tmp_path) -> None:
    path = manifests(tmp_path, "pubsub.mqtt3", url="tcp://127.0.0.1:1")
    err = await fails("list", "-f", path, "--trigger", "orders")
    assert "MQTT" in err and "takes it off the broker" in err and "deadLetterSink" in err


async def test_an_unknown_trigger_lists_the_known_ones(tmp_path) -> None:
    path = manifests(tmp_path, "pubsub.in-memory")
    err = await fails("list", "-f", path, "--trigger", "order")
    assert "no Trigger 'order' in namespace 'default'" in err and "default/orders" in err
    err = await fails("list", "-f", path, "--trigger", "orders", "-n", "prod")
    assert "no Trigger 'orders' in namespace 'prod'" in err


async def test_an_unknown_topic_or_bus_lists_the_known_ones(tmp_path) -> None:
    path = manifests(tmp_path, "pubsub.in-memory")
    err = await fails("replay", "-f", path, "--topic", "default-orders")
    assert "'default-orders' is not a dead-letter topic" in err
    assert "default-clock-deadletter, default-orders-deadletter" in err
    err = await fails("list", "-f", path, "--topic", "default-orders-deadletter", "--bus", "x")
    assert "no EventBus or ClusterEventBus 'x'" in err and "default/default" in err


def test_the_command_line_refuses_nonsense(tmp_path, capsys) -> None:
    path = manifests(tmp_path, "pubsub.in-memory")
    for args in (
        ["list", "-f", path],  # neither --trigger nor --topic
        ["replay", "-f", path, "--trigger", "orders", "--to", "http://x/", "--to-topic", "t"],
        ["list", "-f", path, "--trigger", "orders", "--limit", "0"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["deadletters", *args])
        assert exit_.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err
