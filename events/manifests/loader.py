"""Read manifest files, directories and multi-document YAML into validated models.

Every problem becomes a :class:`ManifestError` naming the file, the document
number (1-based), ``kind/name``, the field path and what was expected. Loading
goes on past a bad document so that one run reports every error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from events.errors import ManifestError
from events.manifests import dapr, function, kubernetes, openfunction
from events.manifests.common import Model

KINDS: dict[tuple[str, str], type[BaseModel]] = {
    (openfunction.API_VERSION, "EventSource"): openfunction.EventSource,
    (openfunction.API_VERSION, "EventBus"): openfunction.EventBus,
    (openfunction.API_VERSION, "ClusterEventBus"): openfunction.ClusterEventBus,
    (openfunction.API_VERSION, "Trigger"): openfunction.Trigger,
    ("dapr.io/v1alpha1", "Component"): dapr.Component,
    (function.API_VERSION, "Function"): function.Function,
    ("v1", "Secret"): kubernetes.Secret,
}
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Origin:
    """Where a resource was read from."""

    file: str
    document: int

    def __str__(self) -> str:
        return f"{self.file}, document {self.document}"


@dataclass(frozen=True)
class Loaded:
    """One validated resource and where it came from."""

    resource: Any
    origin: Origin

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.metadata.name

    @property
    def namespace(self) -> str:
        return self.resource.metadata.namespace

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"

    def error(self, problem: str, field: str | None = None) -> ManifestError:
        return ManifestError(
            problem,
            file=self.origin.file,
            document=self.origin.document,
            resource=self.label,
            field=field,
        )


def manifest_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[ManifestError]]:
    """Expand files and directories (recursively, sorted) into manifest files."""
    files: list[Path] = []
    errors: list[ManifestError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES)
            if not found:
                errors.append(
                    ManifestError(
                        f"no manifest files ({', '.join(MANIFEST_SUFFIXES)}) in this directory",
                        file=str(path),
                    )
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(ManifestError("no such file or directory", file=str(path)))
    return files, errors


def load(paths: Iterable[str | Path]) -> tuple[list[Loaded], list[ManifestError]]:
    """Load every resource under ``paths``; returns what loaded and every error found."""
    files, errors = manifest_files(paths)
    loaded: list[Loaded] = []
    for file in files:
        for item in _load_file(file):
            if isinstance(item, Loaded):
                loaded.append(item)
            elif isinstance(item, list):
                errors.extend(item)
            else:
                errors.append(item)
    return loaded, errors


def _load_file(path: Path) -> Iterator[Loaded | ManifestError | list[ManifestError]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield ManifestError(f"cannot read the file: {exc}", file=str(path))
        return
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        yield ManifestError(f"malformed YAML: {_yaml_problem(exc)}", file=str(path))
        return
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        yield parse_document(document, Origin(str(path), number))


def parse_document(document: Any, origin: Origin) -> Loaded | ManifestError | list[ManifestError]:
    """Validate one decoded document against the model its apiVersion and kind select."""
    where = {"file": origin.file, "document": origin.document}
    if not isinstance(document, dict):
        return ManifestError(
            f"expected a mapping with apiVersion, kind, metadata and spec, "
            f"got {type(document).__name__}",
            **where,
        )
    api_version, kind = document.get("apiVersion"), document.get("kind")
    name = (
        (document.get("metadata") or {}).get("name")
        if isinstance(document.get("metadata"), dict)
        else None
    )
    label = f"{kind}/{name}" if kind and name else (kind or None)
    model = KINDS.get((api_version, kind))
    if model is None:
        return ManifestError(_unknown_kind(api_version, kind), **where, resource=label)
    try:
        return Loaded(model.model_validate(document), origin)
    except ValidationError as exc:
        return [
            ManifestError(_describe(e), **where, resource=label, field=_path(e["loc"]) or None)
            for e in exc.errors()
        ]


def _unknown_kind(api_version: Any, kind: Any) -> str:
    if not api_version or not kind:
        missing = "apiVersion" if not api_version else "kind"
        return f"'{missing}' is missing; every manifest needs apiVersion and kind"
    known = ", ".join(f"{k} ({v})" for v, k in KINDS)
    same_kind = [v for v, k in KINDS if k == kind]
    if same_kind:
        return f"unknown apiVersion {api_version!r} for kind {kind}: expected {same_kind[0]!r}"
    return f"unknown kind {kind!r} (apiVersion {api_version!r}); fnevents reads: {known}"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: dict[str, Any]) -> str:
    kind, message, value = error["type"], error["msg"], error.get("input")
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return _unknown_field(str(error["loc"][-1]))
    message = message.removeprefix("Value error, ")
    if kind.endswith(("_type", "_parsing")) or kind.startswith(("literal", "greater", "less")):
        return f"{message[0].lower()}{message[1:]} (got {value!r})"
    return message


def _unknown_field(name: str) -> str:
    vocabulary = {f for model in _all_models() for f in model.model_fields}
    guess = difflib.get_close_matches(name, vocabulary, n=1)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    return f"unknown field '{name}'{hint}"


def _all_models() -> Iterator[type[BaseModel]]:
    pending: list[type[BaseModel]] = [Model]
    while pending:
        model = pending.pop()
        yield model
        pending.extend(model.__subclasses__())


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem
