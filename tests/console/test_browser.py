"""The console in a real browser (Debian's chromium, driven by Playwright), on the
vehicle-telemetry example with a real Mosquitto and Redis, asserting what a person
sees: the nodes, the MQTT edge's rate rising while simulate.py runs, the failing
sink's error and dead-letter count, a real event in the recent-events list, and a
dead-letter replay refused without the token and done with it.

Screenshots go to ``test-artifacts/console/`` (``$FNEVENTS_TEST_ARTIFACTS`` to move it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.brokers import servers
from tests.console import fleet
from tests.e2e import processes
from tests.e2e.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.mqtt, pytest.mark.redis]

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(os.environ.get("FNEVENTS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"

if CHROMIUM is None:
    pytest.skip(
        "needs Debian's chromium (apt-get install chromium); Playwright's own browser "
        "download does not work offline",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright==1.65.2")


@pytest.fixture
def mosquitto():
    broker = servers.mqtt()
    if broker.name == "amqtt":
        pytest.skip("needs Mosquitto: the example's source speaks MQTT 5, which amqtt lacks")
    with servers.running(broker) as running:
        yield running


def wait_for(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def node(page, node_id: str):
    return page.locator(f'g.node[data-id="{node_id}"]')


def figures(page, node_id: str) -> dict:
    shown = node(page, node_id).locator("text.figures").get_attribute("data-figures")
    return json.loads(shown) if shown else {}


def rate(page, edge_id: str) -> float:
    shown = page.locator(f'text.rate[data-edge="{edge_id}"]').get_attribute("data-rate")
    return float(shown) if shown else 0.0


def test_a_person_sees_the_pipeline_live(tmp_path: Path, mosquitto, redis_broker) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failing, gateway = fleet.Sink(500), fleet.Sink(200)
    mqtt_url = f"tcp://{mosquitto.address}"
    app = fleet.write_app(tmp_path, mqtt_url, redis_broker.address, failing.url)
    process = fleet.start(tmp_path, app, gateway.url, "--console-token", fleet.TOKEN)
    log = tmp_path / "fnevents.log"
    simulator = None
    try:
        base = processes.ops_address(log, process)
        wait_for(lambda: "running; press Ctrl-C" in log.read_text(), "fnevents to run")
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(f"{base}/console/")
            sink_node = f"sink:{failing.url}"
            for node_id in (
                "source:default/vehicles/telemetry",
                "topic:default-vehicles-telemetry",
                "trigger:default/telemetry",
                "subscriber:default/telemetry#0",
                "topic:vehicle-telemetry",
                "function:default/vehicle-metrics",
                "trigger:default/failing",
                sink_node,
                f"topic:{fleet.DEAD_LETTERS}",
            ):
                node(page, node_id).wait_for(timeout=10_000)
            page.locator("#status.live").wait_for(timeout=10_000)
            assert rate(page, fleet.MQTT_EDGE) == 0.0

            simulator = fleet.simulate(mqtt_url, count=600, rate=40)
            wait_for(lambda: rate(page, fleet.MQTT_EDGE) > 0, "a rate on the MQTT edge")
            label = page.locator(f'text.rate[data-edge="{fleet.MQTT_EDGE}"]').text_content() or ""
            assert label.endswith("/s") and float(label[:-2]) > 0
            wait_for(lambda: figures(page, sink_node).get("dead letters", 0) > 0, "dead letters")
            error = node(page, sink_node).locator("text.error").text_content() or ""
            assert "500" in error, error
            assert "failing" in (node(page, sink_node).get_attribute("class") or "")
            page.screenshot(path=str(ARTIFACTS / "running.png"), full_page=True)

            event_row = page.locator("#recent tr.event").first
            event_row.wait_for(timeout=10_000)
            assert page.locator("#recent").inner_text().count("dev.fnevents.mqtt.message") > 0
            node(page, "topic:default-vehicles-telemetry").click()
            page.wait_for_function(
                "document.querySelector('#recent-where').textContent.includes('vehicles')"
            )
            wait_for(lambda: '"vehicleId"' in page.locator("#recent").inner_text(), "event data")
            node(page, "trigger:default/failing").click()
            wait_for(
                lambda: "dead-lettered" in page.locator("#recent").inner_text(),
                "a dead-lettered outcome",
            )
            page.screenshot(path=str(ARTIFACTS / "recent.png"), full_page=True)
            # the README's picture (docs/console.png is a copy of this one)
            clip = {"x": 0, "y": 0, "width": 1500, "height": 760}
            page.screenshot(path=str(ARTIFACTS / "readme.png"), clip=clip)

            simulator.wait(60)
            node(page, f"topic:{fleet.DEAD_LETTERS}").click()
            page.locator("#letters tr.letter").first.wait_for(timeout=15_000)
            assert "500" in page.locator("#letters").inner_text()
            page.click("#replay")  # no token typed: refused
            page.wait_for_function(
                "document.querySelector('#replay-result').textContent.startsWith('401')"
            )
            failing.status = 200
            page.fill("#token", fleet.TOKEN)
            page.click("#replay")
            page.wait_for_function(
                "document.querySelector('#replay-result').textContent.startsWith('replayed')",
                timeout=60_000,
            )
            assert ", 0 failed" in page.locator("#replay-result").inner_text()
            page.screenshot(path=str(ARTIFACTS / "replayed.png"), full_page=True)
            browser.close()
    finally:
        if simulator is not None:
            if simulator.poll() is None:
                simulator.kill()
            simulator.communicate()  # reads and closes its stderr pipe
        code = processes.stop(process, 30)
        failing.close()
        gateway.close()
    assert code == 0, log.read_text()[-3000:]
