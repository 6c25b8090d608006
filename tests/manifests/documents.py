"""Manifest snippets shared by the tests and benches: one place for each document that
many of them need."""

from __future__ import annotations

import json
from collections.abc import Mapping

BUS = """
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {name: default}
spec: {}
"""
CRON_SOURCE = """
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {name: clock}
spec:
  eventBus: default
  cron:
    tick: {schedule: "@every 1s"}
"""


def trigger(
    condition: str = "tick",
    inputs: str = "tick: {eventSource: clock, event: tick}",
    extra: str = "",
) -> str:
    return f"""
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: t1}}
spec:
  eventBus: default
  inputs:
    {inputs}
  subscribers:
  - condition: "{condition}"
    topic: out
{extra}"""


def bus(component_type: str = "pubsub.in-memory", **metadata: object) -> str:
    """A Component named ``eventbus`` of ``component_type`` with ``metadata`` (each value
    a string in the manifest) and the EventBus ``default`` using it, ending in a document
    separator. Block style (no braces), so it can start a ``str.format`` template."""
    items = "".join(
        f"    - name: {name}\n      value: {json.dumps(str(value))}\n"
        for name, value in metadata.items()
    )
    block = f"  metadata:\n{items}" if items else ""
    return f"""\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: eventbus
spec:
  type: {component_type}
{block}---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata:
  name: default
spec:
  component: eventbus
---
"""


#: The embedded bus as a Component named ``eventbus`` and the EventBus ``default`` using it.
EMBEDDED_BUS = bus()


def hourly_source(source: str = "clock", event: str = "tick") -> str:
    """EventSource ``source`` with a cron event ``event`` every hour: it only names the
    topic ``default-{source}-{event}`` (it never fires during a test, which publishes
    there itself). Block style and ending in a separator, like :func:`bus`."""
    return f"""\
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata:
  name: {source}
spec:
  eventBus: default
  cron:
    {event}:
      schedule: "@every 1h"
---
"""


def eventsource(name: str, kind: str, events: Mapping[str, Mapping[str, object]]) -> str:
    """EventSource ``name`` on the EventBus ``default`` with one ``kind`` event per entry of
    ``events`` (event name -> its settings, each written as a JSON flow mapping, so every
    value reads back as given). Ends in a separator, like :func:`bus`."""
    specs = "".join(f"    {event}: {json.dumps(spec)}\n" for event, spec in events.items())
    return f"""\
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: {name}}}
spec:
  eventBus: default
  {kind}:
{specs}---
"""


def hourly_trigger(trigger: str, sink: str, source: str = "clock", **subscriber: object) -> str:
    """:func:`hourly_source` ``source`` and Trigger ``trigger`` delivering its ``tick`` to
    ``sink``. ``subscriber`` adds settings to the subscriber, each value written as YAML."""
    settings = "".join(f"      {name}: {value}\n" for name, value in subscriber.items())
    return (
        hourly_source(source)
        + f"""\
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: {trigger}}}
spec:
  eventBus: default
  inputs: {{tick: {{eventSource: {source}, event: tick}}}}
  subscribers:
    - condition: tick
      sink: {{uri: "{sink}"}}
{settings}"""
    )
