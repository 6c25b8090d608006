"""A Trigger with a ``topic:`` input filters what a sync Function publishes, on every bus
backend.

A sync Function (HTTP) turns each order it is sent into an event on a bus topic through
its output (``context.send``); a Trigger reads that topic through a ``topic:`` input with
a CEL filter and delivers what passes to a real HTTP sink. The whole chain runs in one
Runtime on a real broker (the Dapr sidecar test double for ``dapr``), set up as
``tests/bus/backends.py`` says, so ``pytest -m kafka tests/e2e/test_topic_input.py`` runs
one backend.
"""

from __future__ import annotations

import io
import textwrap
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from events.app.load import load_catalog
from events.app.runtime import Runtime
from events.observability.console import Console
from tests.bus.backends import BACKENDS
from tests.bus.capabilities import require_broker
from tests.bus.conftest import dapr_sidecar  # noqa: F401 - a fixture
from tests.helpers import counter, until
from tests.manifests import documents
from tests.sink import RecordingSink

TIMEOUT = 20.0  # a Kafka group join on a busy 2-core machine takes a few seconds

SHOP = '''
from cloudevents.core.v1.event import CloudEvent


def checkout(context, event):
    """Sync: each order sent over HTTP is published on the bus, with an id of its own."""
    order = event.get_data()
    attributes = {
        "specversion": "1.0",
        "id": f"order-{order['n']}",
        "source": "/shop",
        "type": "shop.order.placed",
        "datacontenttype": "application/json",
    }
    context.send("orders", CloudEvent(attributes, order))
    return {"placed": order["n"]}
'''

MANIFESTS = """\
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {{name: checkout}}
spec:
  source: shop.py
  target: checkout
  outputs:
    orders: {{topic: {topic}, eventBus: default}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: {trigger}}}
spec:
  eventBus: default
  inputs:
    orders:
      topic: {topic}
      filter: {{cel: "data.total >= 100"}}
  subscribers:
    - condition: orders
      sink: {{uri: "{sink}"}}
"""

#: order number -> total; the filter passes 100 and more
ORDERS = {1: 40, 2: 150, 3: 99, 4: 100, 5: 2500, 6: 0}
PASSING = ["order-2", "order-4", "order-5"]
FILTERED = ["order-1", "order-3", "order-6"]


@pytest.fixture(params=[pytest.param(name, marks=case.mark) for name, case in BACKENDS.items()])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bus_manifest(backend: str, request: pytest.FixtureRequest, monkeypatch) -> str:
    """The EventBus ``default`` on ``backend``'s test broker."""
    case = BACKENDS[backend]
    broker = request.getfixturevalue(case.broker_fixture) if case.broker_fixture else None
    require_broker(backend, broker)
    if backend == "dapr":  # the sidecar's pub/sub, found as a Dapr app finds its sidecar
        monkeypatch.setenv("DAPR_GRPC_ENDPOINT", broker.grpc_address)
        return (
            "apiVersion: events.openfunction.io/v1alpha1\nkind: EventBus\n"
            f"metadata: {{name: default}}\nspec: {{component: {broker.pubsub_name}, "
            "sidecar: true}\n---\n"
        )
    return documents.bus(case.component_type, **case.metadata(broker))


async def test_a_topic_input_filters_what_a_sync_function_publishes(
    bus_manifest: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    trigger = f"big-orders-{tag}"
    output = io.StringIO()
    async with RecordingSink() as sink:
        (tmp_path / "shop.py").write_text(textwrap.dedent(SHOP))
        manifests = MANIFESTS.format(topic=f"shop-orders-{tag}", trigger=trigger, sink=sink.url)
        (tmp_path / "app.yaml").write_text(bus_manifest + manifests)
        runtime = Runtime(load_catalog([str(tmp_path)], []), Console(stream=output))
        await runtime.start()
        try:
            await place_orders(runtime.functions[("default", "checkout")].url)
            await sink.wait_for(len(PASSING), timeout=TIMEOUT)
            await until(
                lambda: filtered(runtime, trigger) == len(FILTERED),
                f"the filter dropped {len(FILTERED)} orders\n{output.getvalue()}",
                timeout=TIMEOUT,
            )
        finally:
            await runtime.stop(drain_timeout=2)
    assert sorted(e.id for e in sink.accepted) == PASSING, output.getvalue()
    assert not {e.id for e in sink.requests} & set(FILTERED)
    assert {e.id: e.data["total"] for e in sink.accepted} == {
        f"order-{n}": total for n, total in ORDERS.items() if total >= 100
    }
    assert {e.type for e in sink.accepted} == {"shop.order.placed"}


async def place_orders(url: str) -> None:
    """POST each order to the sync function; a 200 means its output is on the bus."""
    async with aiohttp.ClientSession() as http:
        for n, total in ORDERS.items():
            async with http.post(url, json={"n": n, "total": total}) as response:
                assert response.status == 200, await response.text()
                assert await response.json() == {"placed": n}


def filtered(runtime: Runtime, trigger: str) -> Any:
    return counter(runtime.metrics, "filtered", f"default/{trigger}", "inputs.orders")
