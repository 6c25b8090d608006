"""Typed settings for bus backends, read from a Dapr component's ``spec.metadata``.

Each backend declares one pydantic model whose field names are Dapr's metadata
names. The model is the validation (unknown or missing fields are load errors
naming the component and field) and the documentation (descriptions, defaults).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from events.durations import GO_FORMAT_HINT, OutOfRange, number_of_seconds, parse_go_duration
from events.errors import ManifestError, quote
from events.manifests.loader import Loaded

Model = TypeVar("Model", bound=BaseModel)


def _dapr_duration(value: Any) -> float:
    """Dapr reads a plain integer as milliseconds and anything else as a Go duration
    (finite, and at most the longest Go duration, like every duration fnevents reads)."""
    expected = f"expected {GO_FORMAT_HINT} or milliseconds, got {quote(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(expected)
    if isinstance(value, int | float):
        return number_of_seconds(value, unit=0.001)
    digits = value.strip()
    if digits.isascii() and digits.isdigit():
        return number_of_seconds(float(digits), value, unit=0.001)  # float('9'*400) is inf
    try:
        return parse_go_duration(value)
    except OutOfRange:
        raise
    except ValueError:
        raise ValueError(expected) from None


#: Seconds; written as Dapr writes durations ('15s', '1m', or '15000' milliseconds).
DaprDuration = Annotated[float, BeforeValidator(_dapr_duration)]


#: What fnevents does with Dapr's topic scoping metadata.
UNSCOPED = "not enforced: fnevents runs no Dapr app ids, so every role may use every topic"
#: The metadata names of Dapr's topic scoping.
SCOPING = ("allowedTopics", "protectedTopics", "publishingScopes", "subscriptionScopes")


class BackendSettings(BaseModel):
    """Fields every pub/sub component accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consumerID: str | None = Field(
        default=None, description="Dapr's consumer id; fnevents uses it to name group members"
    )
    # Dapr's per-app scoping, common to every pub/sub component: accepted so Dapr's own
    # Components load, and named in a notice at start, since fnevents has no app ids to scope
    allowedTopics: str | None = Field(default=None, description=f"Dapr app scoping; {UNSCOPED}")
    protectedTopics: str | None = Field(default=None, description=f"Dapr app scoping; {UNSCOPED}")
    publishingScopes: str | None = Field(default=None, description=f"Dapr app scoping; {UNSCOPED}")
    subscriptionScopes: str | None = Field(
        default=None, description=f"Dapr app scoping; {UNSCOPED}"
    )


def validate_metadata(
    model: type[Model],
    metadata: Mapping[str, str],
    component_type: str,
    component: Loaded | None,
    via: str,
) -> Model:
    """``metadata`` validated by ``model``; a ManifestError names the Component and the field
    (an unknown name gets the closest known one as a suggestion, else the list of them)."""
    try:
        return model.model_validate(dict(metadata))
    except ValidationError as exc:
        problem = _metadata_problem(exc, component_type, list(model.model_fields))
    if component is not None:
        raise component.error(problem, "spec.metadata")
    raise ManifestError(f"{via}: {problem}")


def _metadata_problem(exc: ValidationError, component_type: str, known: list[str]) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"]) or "?"
    if error["type"] == "extra_forbidden":
        guess = difflib.get_close_matches(field, known, n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"known names: {', '.join(known)}"
        return f"unknown metadata '{field}' for {component_type}; {hint}"
    if error["type"] == "missing":
        return f"metadata '{field}' is required for {component_type}"
    return f"metadata '{field}': {error['msg'].removeprefix('Value error, ')}"
