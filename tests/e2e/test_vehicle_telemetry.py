"""The vehicle-telemetry example end to end, as its README runs it.

A Mosquitto and a Prometheus Pushgateway of the test's own; ``fnevents run -f
examples/vehicle-telemetry`` (the manifests copied with the broker address
replaced); ``simulate.py`` publishing a known set of readings; then the metrics
the function pushed, read back from the Pushgateway's ``/metrics``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.brokers import servers
from tests.e2e import processes
from tests.e2e.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.mqtt]

EXAMPLE = ROOT / "examples" / "vehicle-telemetry"
PUSHGATEWAY = shutil.which("prometheus-pushgateway")
VEHICLES, COUNT, SEED = 4, 200, 7
DEADLINE = 30.0
METRICS = {
    "vehicle_speed_kmh",
    "vehicle_battery_percent",
    "vehicle_overspeed_total",
    "vehicle_low_battery_total",
    "vehicle_readings_total",
}


def load_simulator():
    spec = importlib.util.spec_from_file_location("vehicle_simulator", EXAMPLE / "simulate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_metrics() -> dict[tuple[str, str], float]:
    """(metric, vehicle) -> value, from the readings simulate.py sends with these options."""
    simulator = load_simulator()
    readings = simulator.readings(VEHICLES, SEED)
    metrics: dict[tuple[str, str], float] = {}
    for _ in range(COUNT):
        reading = next(readings)
        vehicle = reading["vehicleId"]
        for name, hit in (
            ("vehicle_readings_total", True),
            ("vehicle_overspeed_total", reading["speed"] > 120),
            ("vehicle_low_battery_total", reading["battery"] < 15),
        ):
            metrics[(name, vehicle)] = metrics.get((name, vehicle), 0) + int(hit)
        metrics[("vehicle_speed_kmh", vehicle)] = reading["speed"]  # the last one wins
        metrics[("vehicle_battery_percent", vehicle)] = reading["battery"]
    return metrics


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def pushed(base: str) -> dict[tuple[str, str], float]:
    """(metric, vehicle) -> value of what the function pushed, from the Pushgateway."""
    _, text = get(f"{base}/metrics")
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in METRICS and sample.labels.get("job") == "vehicle-telemetry":
                values[(sample.name, sample.labels["vehicle"])] = sample.value
    return values


def wait_for(check, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Pushgateway:
    """Debian's prometheus-pushgateway on a loopback port, metrics in memory only."""

    def __init__(self, workdir: Path) -> None:
        if PUSHGATEWAY is None:
            pytest.skip(
                "needs Prometheus Pushgateway (Debian: apt-get install prometheus-pushgateway)"
            )
        self.port = servers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = workdir / "pushgateway.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                [
                    PUSHGATEWAY,
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--persistence.file=",  # in memory (Debian's default is a system file)
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: get(f"{self.url}/-/ready")[0] == 200, "the Pushgateway to be ready")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)


@pytest.fixture
def pushgateway(tmp_path):
    gateway = Pushgateway(tmp_path)
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def mosquitto():
    broker = servers.mqtt()
    if broker.name == "amqtt":
        pytest.skip("needs Mosquitto: the example's source speaks MQTT 5, which amqtt lacks")
    with servers.running(broker) as running:
        yield running


def copy_example(destination: Path, broker_url: str) -> Path:
    """The example's files, with the EventSource pointed at ``broker_url``."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns("__pycache__"))
    source = destination / "eventsource.yaml"
    source.write_text(source.read_text().replace("tcp://localhost:1883", broker_url))
    return destination


def publish_probe(broker) -> None:
    """A retained reading of vehicle "probe": the broker hands it to the source's new
    subscription, so once the Pushgateway shows it, the whole path is up."""
    host, _, port = broker.address.rpartition(":")
    probe = '{"vehicleId": "probe", "speed": 0, "battery": 100, "seq": 0}'
    command = ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-r"]
    subprocess.run([*command, "-t", "vehicles/probe/telemetry", "-m", probe], check=True)


def simulate(url: str) -> subprocess.CompletedProcess[str]:
    options = {"--url": url, "--vehicles": VEHICLES, "--count": COUNT, "--seed": SEED}
    arguments = [str(part) for option in options.items() for part in option]
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "simulate.py"), "--rate", "400", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )


def fleet_counted(base: str) -> dict[tuple[str, str], float] | None:
    """The pushed metrics once every simulated reading is counted, else None."""
    metrics = pushed(base)
    counted = sum(
        value
        for (name, vehicle), value in metrics.items()
        if name == "vehicle_readings_total" and vehicle != "probe"
    )
    return metrics if counted >= COUNT else None


class Fnevents:
    """``fnevents run -f <app> --port 0 -q``, its output in a file (a chatty run, where
    every failed push is a warning line, can never block on a full pipe)."""

    def __init__(self, app: Path, pushgateway_url: str) -> None:
        self.log = app.parent / "fnevents.log"
        run = ["run", "-f", str(app), "--port", "0", "-q"]
        self.process = processes.start(run, self.log, PUSHGATEWAY_URL=pushgateway_url)

    def said(self, text: str) -> bool:
        return text in self.output

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (drain and exit); the exit code."""
        return processes.stop(self.process, 30)


def check_the_seed(expected: dict[tuple[str, str], float]) -> None:
    overspeeds = sum(v for (m, _), v in expected.items() if m == "vehicle_overspeed_total")
    low = sum(v for (m, _), v in expected.items() if m == "vehicle_low_battery_total")
    assert overspeeds > 0 and low > 0, "the seed should give overspeed and low-battery readings"


def test_the_example_pushes_the_metrics_of_the_simulated_fleet(
    tmp_path: Path, mosquitto, pushgateway: Pushgateway
) -> None:
    expected = expected_metrics()
    check_the_seed(expected)
    url = f"tcp://{mosquitto.address}"
    app = copy_example(tmp_path / "vehicle-telemetry", url)
    publish_probe(mosquitto)
    run = Fnevents(app, pushgateway.url)
    try:
        wait_for(
            lambda: ("vehicle_readings_total", "probe") in pushed(pushgateway.url),
            "the probe reading on the Pushgateway",
        )
        simulation = simulate(url)
        assert simulation.returncode == 0, simulation.stderr
        assert f"done: sent {COUNT}  acked {COUNT}" in simulation.stderr, simulation.stderr
        metrics = wait_for(
            lambda: fleet_counted(pushgateway.url), f"{COUNT} readings on the Pushgateway"
        )
    finally:
        code = run.stop()
    assert code == 0, run.output
    got = {key: value for key, value in metrics.items() if key[1] != "probe"}
    assert got == pytest.approx(expected), run.output


def test_readings_wait_out_a_pushgateway_that_is_down_and_count_once(
    tmp_path: Path, mosquitto
) -> None:
    """Pushes fail until the Pushgateway starts; the events are delivered again and
    every reading is counted exactly once (retries do not count twice)."""
    expected = expected_metrics()
    gateway = Pushgateway(tmp_path)  # not started yet: its port refuses connections
    url = f"tcp://{mosquitto.address}"
    app = copy_example(tmp_path / "vehicle-telemetry", url)
    publish_probe(mosquitto)
    run = Fnevents(app, gateway.url)
    try:
        # the probe reached the function (so the source is subscribed) and its push failed
        wait_for(lambda: run.said("from vehicle-telemetry failed"), "a failed push")
        simulation = simulate(url)
        assert simulation.returncode == 0, simulation.stderr
        gateway.start()
        metrics = wait_for(
            lambda: fleet_counted(gateway.url), f"{COUNT} readings on the Pushgateway"
        )
    finally:
        code = run.stop()
        gateway.stop()
    assert code == 0, run.output
    got = {key: value for key, value in metrics.items() if key[1] != "probe"}
    assert got == pytest.approx(expected), run.output
    failed = set(re.findall(r"event (\S+) from vehicle-telemetry failed", run.output))
    assert len(failed) > 1, f"readings besides the probe should have failed: {run.output}"
