"""The function-chain example end to end, as its README runs it, against Tansu.

HTTP function -> Kafka binding -> Kafka EventSource -> Trigger -> async function,
in one ``fnevents run`` process; then the async function in a process of its own
(``--only``) on a Redis bus, with the other roles in a second process.

The example is copied with its Kafka topic, bus topic and consumer group made
unique and its EventSource pointed at the test's broker; the binding Component is
pointed there with ``--components``, as the README says.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.e2e import processes
from tests.e2e.processes import ROOT, read_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

EXAMPLE = ROOT / "examples" / "function-chain"
#: Through Kafka, a consumer group join (about 1 s on Tansu with the example's 2 s
#: session) and two bus hops.
DELIVERY_TIMEOUT = 30.0


def copy_example(tmp_path: Path, brokers: str) -> tuple[Path, Path]:
    """The example with unique names, and a binding Component file for ``--components``."""
    suffix = uuid.uuid4().hex[:8]
    kafka_topic, bus_topic = f"sample-topic-{suffix}", f"sample-messages-{suffix}"
    folder = tmp_path / "function-chain"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    for path in folder.glob("*.yaml"):
        text = path.read_text().replace("sample-messages", bus_topic)
        text = text.replace("topic: sample-topic", f"topic: {kafka_topic}")
        text = text.replace("localhost:9092", brokers).replace("port: 8080", "port: 0")
        text = text.replace(
            "authRequired: false", f"authRequired: false\n      consumerGroup: g-{suffix}"
        )
        path.write_text(text)
    binding = (EXAMPLE / "kafka-binding.yaml").read_text()
    binding = binding.replace("localhost:9092", brokers).replace('"sample-topic"', kafka_topic)
    component = tmp_path / "components" / "kafka-binding.yaml"
    component.parent.mkdir()
    component.write_text(binding)
    return folder, component


def test_the_chain_logs_the_default_and_a_custom_message(tmp_path, kafka_broker) -> None:
    folder, component = copy_example(tmp_path, kafka_broker.address)
    process = processes.piped(
        "run", "-f", str(folder), "--components", str(component), "--port", "0"
    )
    try:
        lines = read_until(process, r"running; press Ctrl-C")
        url = processes.listening_url(lines, "forward-to-kafka")
        assert processes.post(url) == 200
        read_until(process, r"message from Kafka 'Hello'", DELIVERY_TIMEOUT)
        assert processes.post(url, b'{"message": "from curl 42"}') == 200
        read_until(process, r"message from Kafka 'from curl 42'", DELIVERY_TIMEOUT)
    finally:
        rest = processes.stop_cleanly(process)
    assert "Traceback" not in rest


@pytest.mark.redis
def test_the_async_function_runs_in_its_own_process(tmp_path, kafka_broker, redis_broker) -> None:
    folder, component = copy_example(tmp_path, kafka_broker.address)
    redis = tmp_path / "components" / "redis.yaml"
    shipped = (ROOT / "components" / "redis.yaml").read_text()
    redis.write_text(shipped.replace("localhost:6379", redis_broker.address))
    common = ["run", "-f", str(folder), "--components", str(redis), "--port", "0"]
    logger = processes.piped(*common, "--only", "function/kafka-input")
    rest = None
    try:
        started = read_until(logger, r"running; press Ctrl-C")
        assert not any(re.match(r"(source|trigger) ", line) for line in started)
        rest = processes.piped(
            *common,
            "--components",
            str(component),
            *("--only", "function/forward-to-kafka"),
            *("--only", "source/kafka-source", "--only", "trigger/kafka-trigger"),
        )
        lines = read_until(rest, r"running; press Ctrl-C")
        assert not any("function default/kafka-input" in line for line in lines)
        assert (
            processes.post(
                processes.listening_url(lines, "forward-to-kafka"), b'{"message": "split"}'
            )
            == 200
        )
        read_until(logger, r"message from Kafka 'split'", DELIVERY_TIMEOUT)
        assert processes.post(processes.listening_url(lines, "forward-to-kafka")) == 200
        read_until(logger, r"message from Kafka 'Hello'", DELIVERY_TIMEOUT)
    finally:
        others = processes.stop_cleanly(rest) if rest is not None else ""
        processes.stop_cleanly(logger)
    assert "message from Kafka" not in others
