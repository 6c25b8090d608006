"""An async fnevents function: vehicle telemetry in, Prometheus metrics out (Pushgateway).

For each telemetry event (``data``: ``vehicleId``, ``speed`` km/h, ``battery`` %,
``timestamp``, ``seq``) it updates, per vehicle:

* ``vehicle_speed_kmh`` and ``vehicle_battery_percent``: gauges, the latest reading;
* ``vehicle_overspeed_total``: readings above 120 km/h;
* ``vehicle_low_battery_total``: readings below 15 % battery;
* ``vehicle_readings_total``: readings received;

and pushes them to the Pushgateway at ``PUSHGATEWAY_URL`` (default
``http://localhost:9091``) as job ``vehicle-telemetry``, grouped by ``instance``
(``POD_NAME``, else the host name), so replicas do not overwrite each other.

At least once, end to end: the function returns only after a push that
includes its reading succeeded. A failed push raises, so fnevents redelivers the
event with backoff. Redeliveries do not count twice: readings are counted once
per event id (the MQTT source gives a redelivered message the same id). The
gauges keep the newest reading by ``(timestamp, seq)``, since events handled
concurrently can finish in any order.

Pushes are coalesced: events that arrive while a push is on the wire share the
next one, so the Pushgateway sees a few pushes a second, not one per reading.
Counters start at zero when the process starts (as any process's do).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import OrderedDict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

PUSHGATEWAY_URL = os.environ.get("PUSHGATEWAY_URL", "http://localhost:9091")
JOB = "vehicle-telemetry"
INSTANCE = os.environ.get("POD_NAME") or socket.gethostname()
OVERSPEED_KMH = 120.0
LOW_BATTERY_PERCENT = 15.0
PUSH_TIMEOUT = 5.0
REMEMBERED_IDS = 100_000

registry = CollectorRegistry()
speed = Gauge("vehicle_speed_kmh", "Latest speed, km/h", ["vehicle"], registry=registry)
battery = Gauge("vehicle_battery_percent", "Latest battery, %", ["vehicle"], registry=registry)
overspeed = Counter(
    "vehicle_overspeed", f"Readings above {OVERSPEED_KMH:g} km/h", ["vehicle"], registry=registry
)
low_battery = Counter(
    "vehicle_low_battery",
    f"Readings below {LOW_BATTERY_PERCENT:g} % battery",
    ["vehicle"],
    registry=registry,
)
readings = Counter("vehicle_readings", "Telemetry readings", ["vehicle"], registry=registry)

_counted: OrderedDict[str, None] = OrderedDict()  # ids of events already counted
_newest: dict[str, tuple[str, int]] = {}  # vehicle -> (timestamp, seq) shown by the gauges


class _Pusher:
    """Pushes the registry; a caller returns once a push begun after its change succeeded."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self.changes = 0
        self._pushed = 0

    async def push(self) -> None:
        wanted = self.changes
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._pushed >= wanted:
                return  # a push that started after our change has succeeded
            upto = self.changes
            await asyncio.to_thread(
                push_to_gateway,
                PUSHGATEWAY_URL,
                job=JOB,
                registry=registry,
                grouping_key={"instance": INSTANCE},
                timeout=PUSH_TIMEOUT,
            )
            self._pushed = upto


pusher = _Pusher()


async def record(event: Any) -> None:
    """The function: count one reading and push the metrics."""
    data = event.get_data()
    if not isinstance(data, dict) or not {"vehicleId", "speed", "battery"} <= data.keys():
        raise ValueError(f"not vehicle telemetry (needs vehicleId, speed, battery): {data!r}")
    if event.get_id() not in _counted:
        _count(data)
        _counted[event.get_id()] = None
        if len(_counted) > REMEMBERED_IDS:
            _counted.popitem(last=False)
        pusher.changes += 1
    await pusher.push()


def _count(data: dict[str, Any]) -> None:
    vehicle = str(data["vehicleId"])
    km_h, percent = float(data["speed"]), float(data["battery"])
    readings.labels(vehicle).inc()
    # every vehicle gets both counters, at 0 until they count something (so a query for
    # a vehicle without overspeeding finds 0 rather than nothing)
    overspeed.labels(vehicle).inc(1 if km_h > OVERSPEED_KMH else 0)
    low_battery.labels(vehicle).inc(1 if percent < LOW_BATTERY_PERCENT else 0)
    order = (str(data.get("timestamp", "")), int(data.get("seq", 0)))
    if order >= _newest.get(vehicle, ("", -1)):
        _newest[vehicle] = order
        speed.labels(vehicle).set(km_h)
        battery.labels(vehicle).set(percent)
