"""The async function of OpenFunction's kafka-input sample (kafka-input.go), in Python,
written for OpenFunction's Python functions framework: ``def f(context)``."""

from __future__ import annotations

import json
from typing import Any


def handle_kafka_input(context: Any) -> None:
    """Log the `message` field of each Kafka record, as the Go sample prints it."""
    data = context.get_binding_request().data
    try:
        message = json.loads(data)
    except ValueError as exc:
        print("error reading message from Kafka binding", exc, flush=True)
        raise
    print(f"message from Kafka '{message.get('message')}'", flush=True)
