"""The sync function of OpenFunction's with-output-binding sample (sender.go), in Python,
written for OpenFunction's Python functions framework: ``def f(context)``."""

from __future__ import annotations

import json
from typing import Any


def forward_to_kafka(context: Any) -> Any:
    """Forward the request body to the output `kafka-server`, or {"message": "Hello"}."""
    body = context.get_http_request().get_data()
    if body:
        print(f"http - Data: {body.decode('utf-8', 'replace')}", flush=True)
        greeting = body
    else:
        print("http - Data: Received", flush=True)
        greeting = json.dumps({"message": "Hello"}).encode()
    context.send("kafka-server", greeting)
    return {"sent": json.loads(greeting)} if _is_json(greeting) else "sent"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
