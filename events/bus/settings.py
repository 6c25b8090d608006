"""Typed settings for bus backends, read from a Dapr component's ``spec.metadata``.

Each backend declares one pydantic model whose field names are Dapr's metadata
names. The model is the validation (unknown or missing fields are load errors
naming the component and field) and the documentation (descriptions, defaults).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from events.durations import GO_FORMAT_HINT, parse_go_duration


def _dapr_duration(value: Any) -> float:
    """Dapr reads a plain integer as milliseconds and anything else as a Go duration."""
    if isinstance(value, bool):
        raise ValueError(f"expected {GO_FORMAT_HINT} or milliseconds, got {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        return float(value) / 1000.0
    try:
        return parse_go_duration(str(value))
    except ValueError:
        raise ValueError(f"expected {GO_FORMAT_HINT} or milliseconds, got {value!r}") from None


#: Seconds; written as Dapr writes durations ('15s', '1m', or '15000' milliseconds).
DaprDuration = Annotated[float, BeforeValidator(_dapr_duration)]


class BackendSettings(BaseModel):
    """Fields every pub/sub component accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consumerID: str | None = Field(
        default=None, description="Dapr's consumer id; fnevents uses it to name group members"
    )
