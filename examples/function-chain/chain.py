"""The two functions of the sync -> async chain (OpenFunction's sample, in Python)."""

from __future__ import annotations

import json
from typing import Any

DEFAULT = {"message": "Hello"}


def forward_to_kafka(context: Any, event: Any) -> dict[str, Any]:
    """Sync: forward the request body, or {"message": "Hello"} when it is empty."""
    data = event.get_data()
    payload = DEFAULT if data is None else data
    context.send("kafka-server", payload)
    if isinstance(payload, bytes):  # a body without a JSON content type arrives as bytes
        return {"sent": payload.decode("utf-8", "replace")}
    return {"sent": payload}


def log_message(event: Any) -> None:
    """Async: log the `message` field of what came through Kafka."""
    data = event.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            print(f"message from Kafka (not JSON) {data!r}", flush=True)
            return
    message = data.get("message") if isinstance(data, dict) else data
    print(f"message from Kafka '{message}'", flush=True)
