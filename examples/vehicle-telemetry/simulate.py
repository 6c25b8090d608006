"""Publish simulated vehicle telemetry over MQTT (QoS 1), with progress.

Each vehicle ``vNNN`` publishes JSON to ``<topic-prefix>/<vehicleId>/telemetry``:

    {"vehicleId": "v001", "seq": 17, "speed": 131.4, "battery": 12.5,
     "lat": 48.13712, "lon": 11.57561, "timestamp": "2024-05-01T12:00:00.123Z"}

``speed`` is km/h, ``battery`` percent, ``seq`` counts each vehicle's readings.
The readings are random but reproducible (``--seed``): each vehicle cruises
around its own speed (every third one, v002, v005, ..., around 115-140 km/h) and
drains its battery (recharging at 0 %), so the example's overspeed and
low-battery metrics have something to count.
:func:`readings` is importable, which is how the end-to-end test knows what to expect.

Only paho-mqtt is needed (``pip install paho-mqtt``); the script does not import fnevents.
"""

from __future__ import annotations

import argparse
import json
import random
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

EPILOG = """\
examples:
  python simulate.py                                   # 5 vehicles, 10 msg/s, for 60 s
  python simulate.py --vehicles 50 --rate 500 --count 10000
  python simulate.py --url tcp://broker.example:1883 --topic-prefix fleet/north
"""


def readings(vehicles: int, seed: int = 7) -> Iterator[dict]:
    """Telemetry without timestamps, vehicles taking turns: v001, v002, ..., v001, ..."""
    rng = random.Random(seed)
    fleet = [
        {
            "vehicleId": f"v{i + 1:03d}",
            "cruise": rng.uniform(115, 140) if i % 3 == 1 else rng.uniform(40, 100),
            "battery": rng.uniform(20, 100),
            "drain": rng.uniform(0.2, 1.5),
            "lat": 48.137 + rng.uniform(-0.05, 0.05),
            "lon": 11.575 + rng.uniform(-0.05, 0.05),
            "seq": 0,
        }
        for i in range(vehicles)
    ]
    while True:
        for car in fleet:
            car["seq"] += 1
            car["battery"] = max(0.0, car["battery"] - car["drain"] * rng.uniform(0.5, 1.5))
            if car["battery"] == 0.0:
                car["battery"] = 100.0  # a charging stop
            car["lat"] += rng.uniform(-0.001, 0.001)
            car["lon"] += rng.uniform(-0.001, 0.001)
            yield {
                "vehicleId": car["vehicleId"],
                "seq": car["seq"],
                "speed": round(max(0.0, car["cruise"] + rng.gauss(0, 12)), 1),
                "battery": round(car["battery"], 1),
                "lat": round(car["lat"], 6),
                "lon": round(car["lon"], 6),
            }


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.vehicles < 1 or args.rate <= 0 or (args.count is not None and args.count < 0):
        parser.error("--vehicles must be at least 1, --rate above 0, --count not negative")
    try:
        client = _connect(args)
    except (OSError, ValueError) as exc:
        print(f"error: cannot reach the MQTT broker at {args.url}: {exc}", file=sys.stderr)
        return 2
    acked = _Acks()
    client.on_publish = acked.on_publish
    total = args.count if args.count is not None else int(args.rate * args.duration)
    print(
        f"publishing {total} readings of {args.vehicles} vehicles to {args.url} "
        f"({args.topic_prefix}/<vehicleId>/telemetry, QoS 1) at {args.rate:g}/s",
        file=sys.stderr,
    )
    start = time.monotonic()
    next_report = start + 1.0
    sent = 0
    try:
        for reading in readings(args.vehicles, args.seed):
            if sent >= total:
                break
            delay = start + sent / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            reading["timestamp"] = _now()
            topic = f"{args.topic_prefix}/{reading['vehicleId']}/telemetry"
            client.publish(topic, _json(reading), qos=1)
            sent += 1
            if time.monotonic() >= next_report:
                _progress(sent, acked.count, start)
                next_report += 1.0
        if not acked.wait_for(sent, timeout=args.ack_timeout):
            print(
                f"error: the broker acked {acked.count} of {sent} readings within "
                f"{args.ack_timeout:g} s",
                file=sys.stderr,
            )
            return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        client.disconnect()
        client.loop_stop()
    _progress(sent, acked.count, start, final=True)
    return 0


class _Acks:
    """PUBACKs counted from paho's network thread."""

    def __init__(self) -> None:
        self.count = 0
        self._condition = threading.Condition()

    def on_publish(self, _client, _userdata, _mid, _reason, _properties) -> None:
        with self._condition:
            self.count += 1
            self._condition.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self.count >= count, timeout)


def _connect(args: argparse.Namespace) -> paho.Client:
    parts = urlsplit(args.url)
    tls = parts.scheme in ("ssl", "mqtts", "tls")
    if parts.scheme not in ("tcp", "mqtt", "ssl", "mqtts", "tls") or not parts.hostname:
        raise ValueError("expected tcp://host[:port] or ssl://host[:port]")
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        protocol=paho.MQTTv5 if args.protocol == "5" else paho.MQTTv311,
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)  # keep everything until the broker has it
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    if tls:
        client.tls_set(ca_certs=args.cafile, cert_reqs=ssl.CERT_REQUIRED)
    client.connect(parts.hostname, parts.port or (8883 if tls else 1883))
    client.loop_start()
    return client


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(reading: dict) -> bytes:
    return json.dumps(reading, separators=(",", ":")).encode()


def _progress(sent: int, acked: int, start: float, final: bool = False) -> None:
    elapsed = max(time.monotonic() - start, 1e-9)
    prefix = "done: " if final else ""
    print(
        f"{prefix}sent {sent}  acked {acked}  {sent / elapsed:.1f} msg/s  ({elapsed:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Publish simulated vehicle telemetry (JSON) over MQTT at QoS 1.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", default="tcp://localhost:1883", help="the broker (default tcp://localhost:1883)"
    )
    parser.add_argument(
        "--topic-prefix", default="vehicles", help="topics are PREFIX/<vehicleId>/telemetry"
    )
    parser.add_argument("--vehicles", type=int, default=5, help="number of vehicles (default 5)")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="messages per second, all vehicles (default 10)"
    )
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--duration", type=float, default=60.0, help="seconds to publish (default 60)"
    )
    amount.add_argument("--count", type=int, help="number of messages to publish, instead")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--protocol", choices=["3.1.1", "5"], default="3.1.1", help="MQTT version (default 3.1.1)"
    )
    parser.add_argument("--cafile", help="CA certificate (PEM) for ssl:// urls")
    parser.add_argument(
        "--ack-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the broker's acks at the end (default 30)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
