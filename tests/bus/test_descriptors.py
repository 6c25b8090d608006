"""The broker descriptors: every registry and test table derives from them, so they must
name parts that exist and settings models that load without a client library."""

from __future__ import annotations

import subprocess
import sys

import pytest

from events.brokers import BROKERS
from events.brokers.registry import PARTS, part_for
from events.bus.settings import BackendSettings
from events.errors import BackendNotAvailable
from tests.bus.backends import BACKENDS


def test_every_broker_has_a_test_setup() -> None:
    """Adding a broker to events.brokers means saying in tests/bus/backends.py how the
    tests start it."""
    assert sorted(BACKENDS) == sorted(b.name for b in BROKERS)


@pytest.mark.parametrize("broker", BROKERS, ids=lambda b: b.name)
def test_every_part_a_broker_names_loads(broker) -> None:
    named = [p.target for p in broker.parts()] + [p.settings for p in broker.parts()]
    named += [t for t in (broker.source, broker.letters) if t]
    for target in named:
        assert isinstance(broker.load(target), type), target
    assert issubclass(broker.load(broker.bus.settings), BackendSettings)


def test_component_types_are_unique_across_brokers() -> None:
    types = [p.component_type for b in BROKERS for p in b.parts()]
    assert len(types) == len(set(types)) == len(PARTS)


def test_an_unknown_type_lists_the_known_ones_of_its_family() -> None:
    with pytest.raises(
        BackendNotAvailable, match=r"unknown state type 'state\.etcd'; available: state\.redis"
    ):
        part_for("state.etcd", "state")


def test_a_settings_model_imports_no_client_library() -> None:
    """Loading manifests validates metadata; that must not pay for importing a client."""
    code = (
        "import sys\n"
        "from events.brokers import BROKERS\n"
        "for b in BROKERS:\n"
        "    for p in b.parts():\n"
        "        b.load(p.settings)\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted({'aiokafka', 'nats', 'paho', 'grpc', 'dapr'} & loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
