"""Manifest snippets shared by the manifest tests."""

from __future__ import annotations

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


#: The embedded bus as a Component named ``eventbus`` and the EventBus ``default`` using it,
#: ending in a document separator. Block style (no braces), so it can start a
#: ``str.format`` template.
EMBEDDED_BUS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: eventbus
spec:
  type: pubsub.in-memory
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata:
  name: default
spec:
  component: eventbus
---
"""
