"""The vehicle-telemetry example run with ``--console`` for the console's tests.

The example's manifests (its EventSource pointed at the test's Mosquitto), the bus on
the test's Redis (so dead letters can be listed and replayed), and one more Trigger,
``failing``, on the same input, whose sink answers 500 until it is healed. The
function's Pushgateway is a sink answering 200.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.e2e import processes
from tests.e2e.processes import ROOT

EXAMPLE = ROOT / "examples" / "vehicle-telemetry"
TOKEN = "s3cret-console-token"
MQTT_EDGE = "source:default/vehicles/telemetry->topic:default-vehicles-telemetry"
DEAD_LETTERS = "default-failing-deadletter"

FAILING = """\
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata:
  name: failing
spec:
  eventBus: default
  inputs:
    telemetry:
      eventSource: vehicles
      event: telemetry
  subscribers:
    - condition: telemetry
      sink:
        uri: {sink}
      delivery: {{retry: 1, backoffDelay: 10ms, timeout: 5s}}
"""

REDIS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: eventbus
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - name: redisHost
      value: "{address}"
    - name: processingTimeout
      value: "2s"
    - name: redeliverInterval
      value: "500ms"
"""


class Sink:
    """A threaded HTTP server answering ``status`` to every POST; counts them."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.received = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received += 1
                body = b"broken on purpose" if sink.status >= 400 else b""
                self.send_response(sink.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:  # the Pushgateway client PUTs
                self.do_POST()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_app(directory: Path, mqtt_url: str, redis_address: str, failing_sink: str) -> Path:
    """The example's manifests plus ``failing.yaml``; the Redis Component beside them."""
    app = directory / "vehicle-telemetry"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("__pycache__"))
    source = app / "eventsource.yaml"
    source.write_text(source.read_text().replace("tcp://localhost:1883", mqtt_url))
    (app / "failing.yaml").write_text(FAILING.format(sink=failing_sink))
    (directory / "redis.yaml").write_text(REDIS.format(address=redis_address))
    return app


def start(directory: Path, app: Path, pushgateway: str, *extra: str) -> subprocess.Popen:
    """``fnevents run --console --port 0 -q`` on the app, the bus on Redis."""
    args = ["run", "-f", str(app), "--components", str(directory / "redis.yaml")]
    args += ["--port", "0", "-q", "--console", "--no-reload", *extra]
    return processes.start(args, directory / "fnevents.log", PUSHGATEWAY_URL=pushgateway)


def simulate(mqtt_url: str, count: int, rate: int) -> subprocess.Popen:
    """simulate.py in the background: ``count`` readings at ``rate`` per second."""
    command = [sys.executable, str(EXAMPLE / "simulate.py"), "--url", mqtt_url]
    command += ["--vehicles", "3", "--count", str(count), "--rate", str(rate)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
