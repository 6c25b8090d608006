"""The openfunction-functions example end to end, against Tansu: OpenFunction's own
sync -> async sample as v1beta2 Function manifests with Python code.

POST -> function-front (sync) -> Kafka output binding -> Kafka -> kafka-input's input
binding (fnevents' Kafka source) -> bus -> kafka-input (async) logs the message. Once in
one ``fnevents run -f`` process on the embedded bus; then each function in its own
process on a Redis bus (``--components components/redis.yaml``).

The example is copied with its Kafka topic and consumer groups made unique, its broker
address pointed at the test's broker and the HTTP port set to 0.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e import processes
from tests.e2e.processes import FNEVENTS, ROOT, read_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

EXAMPLE = ROOT / "examples" / "openfunction-functions"
DELIVERY_TIMEOUT = 30.0  # through Kafka, a consumer group join and a bus hop


def copy_example(tmp_path: Path, brokers: str) -> Path:
    suffix = uuid.uuid4().hex[:8]
    folder = tmp_path / "openfunction-functions"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    for path in folder.rglob("*.yaml"):
        text = path.read_text().replace("localhost:9092", brokers)
        text = text.replace("sample-topic", f"sample-topic-{suffix}")
        text = text.replace("value: kafka-input", f"value: kafka-input-{suffix}")
        path.write_text(text.replace("port: 8080", "port: 0"))
    return folder


def fnevents(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FNEVENTS, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_sample_chain_runs_from_openfunction_manifests(tmp_path, kafka_broker) -> None:
    folder = copy_example(tmp_path, kafka_broker.address)
    process = processes.piped("run", "-f", str(folder), "--port", "0")
    try:
        lines = read_until(process, r"running; press Ctrl-C")
        url = processes.listening_url(lines, "function-front")
        assert processes.post(url) == 200
        read_until(process, r"message from Kafka 'Hello'", DELIVERY_TIMEOUT)
        assert processes.post(url, b'{"message": "from curl 7"}') == 200
        read_until(process, r"message from Kafka 'from curl 7'", DELIVERY_TIMEOUT)
    finally:
        rest = processes.stop_cleanly(process)
    assert "Traceback" not in rest


@pytest.mark.redis
def test_each_function_in_its_own_process_on_a_redis_bus(
    tmp_path, kafka_broker, redis_broker
) -> None:
    folder = copy_example(tmp_path, kafka_broker.address)
    redis = tmp_path / "redis.yaml"
    shipped = (ROOT / "components" / "redis.yaml").read_text()
    redis.write_text(shipped.replace("localhost:6379", redis_broker.address))
    common = ["run", "-f", str(folder), "--components", str(redis), "--port", "0"]
    logger = processes.piped(*common, "--only", "function/kafka-input")
    front = None
    try:
        read_until(logger, r"running; press Ctrl-C")
        front = processes.piped(
            *common, "--only", "function/function-front", "--only", "source/kafka-input"
        )
        lines = read_until(front, r"running; press Ctrl-C")
        assert not any("function default/kafka-input" in line for line in lines)
        assert (
            processes.post(
                processes.listening_url(lines, "function-front"), b'{"message": "split"}'
            )
            == 200
        )
        read_until(logger, r"message from Kafka 'split'", DELIVERY_TIMEOUT)
    finally:
        others = processes.stop_cleanly(front) if front is not None else ""
        processes.stop_cleanly(logger)
    assert "message from Kafka" not in others


def test_the_original_go_manifests_validate_and_refuse_to_run(tmp_path) -> None:
    fixtures = ROOT / "tests" / "fixtures" / "openfunction-functions" / "v1beta2"
    files = [
        fixtures / "knative_with-output-binding_function-front.yaml",
        fixtures / "async_bindings_kafka-input_kafka-input.yaml",
    ]
    args = [arg for f in files for arg in ("-f", str(f))]
    shown = fnevents("validate", *args)
    assert shown.returncode == 0, shown.stderr
    assert "builds Go" in shown.stdout and "KEDA trigger kafka" in shown.stdout
    assert "output 'kafka-server' -> binding Component" in shown.stdout
    refused = fnevents("run", *args, "--port", "0")
    assert refused.returncode == 1
    assert "not hostable here" in refused.stderr and "use its URL as a sink" in refused.stderr
