"""Read manifest files, directories and multi-document YAML into validated models.

Every problem becomes a :class:`ManifestError` naming the file, the document
number (1-based), ``kind/name``, the field path and what was expected. Loading
goes on past a bad document so that one run reports every error.

Hostile input is refused quickly with a clear message: a file is at most
``MAX_FILE_BYTES``; YAML is read within the limits of :mod:`events.manifests.yaml_reader`
(``MAX_NODES`` values with aliases expanded, ``MAX_DEPTH`` levels); a quoted value in any
message is cut to ``events.errors.QUOTE_LIMIT`` characters, and a document reports at
most ``MAX_ERRORS_PER_DOCUMENT`` errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from events.errors import ManifestError, quote, shorten, shown
from events.manifests import dapr, function, kubernetes, ofn_function, openfunction
from events.manifests.common import Model
from events.manifests.yaml_reader import (
    read_yaml,
    resource_label,
)

KINDS: dict[tuple[str, str], type[BaseModel]] = {
    (openfunction.API_VERSION, "EventSource"): openfunction.EventSource,
    (openfunction.API_VERSION, "EventBus"): openfunction.EventBus,
    (openfunction.API_VERSION, "ClusterEventBus"): openfunction.ClusterEventBus,
    (openfunction.API_VERSION, "Trigger"): openfunction.Trigger,
    ("dapr.io/v1alpha1", "Component"): dapr.Component,
    (function.API_VERSION, "Function"): function.Function,
    (ofn_function.V1BETA1, "Function"): ofn_function.FunctionV1beta1,
    (ofn_function.V1BETA2, "Function"): ofn_function.FunctionV1beta2,
    ("v1", "Secret"): kubernetes.Secret,
}
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

#: The largest manifest file read, in bytes.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: The most errors reported for one document; the rest are counted.
MAX_ERRORS_PER_DOCUMENT = 20


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
            found = sorted(p for p in path.rglob("*") if _is_manifest(p, path))
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
        elif path.exists():
            errors.append(ManifestError("not a regular file or a directory", file=str(path)))
        else:
            errors.append(ManifestError("no such file or directory", file=str(path)))
    return files, errors


def _is_manifest(path: Path, directory: Path) -> bool:
    """A manifest file in ``directory``, outside hidden folders: a Kubernetes ConfigMap
    mount holds every file twice, as ``name`` and as ``..2024_01_01_00_00_00.1/name``
    (behind the ``..data`` link it swaps on an update), and editors keep backups in
    dot-folders."""
    hidden = any(part.startswith(".") for part in path.relative_to(directory).parts[:-1])
    return path.suffix in MANIFEST_SUFFIXES and not hidden


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
    file = str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        yield ManifestError(f"cannot read the file: {exc}", file=file)
        return
    if len(raw) > MAX_FILE_BYTES:
        yield ManifestError(
            f"the file is larger than {MAX_FILE_BYTES} bytes, the most fnevents reads from "
            "one manifest file; split it into several files",
            file=file,
        )
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield ManifestError(
            f"cannot read the file: it is not UTF-8 text (byte {exc.start}: {exc.reason})",
            file=file,
        )
        return
    try:
        documents = read_yaml(text, file)
    except ManifestError as exc:
        yield exc
        return
    for number, document in documents:
        yield parse_document(document, Origin(file, number))


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
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = resource_label(kind, name)
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if value is not None and not isinstance(value, str):
            return ManifestError(
                f"expected a string, got {type(value).__name__} {quote(value)}",
                **where,
                resource=label,
                field=field,
            )
    model = KINDS.get((api_version, kind))
    if model is None:
        return ManifestError(_unknown_kind(api_version, kind), **where, resource=label)
    try:
        return Loaded(model.model_validate(document), origin)
    except ValidationError as exc:
        found = exc.errors()
        errors = [
            ManifestError(_describe(e), **where, resource=label, field=_path(e["loc"]) or None)
            for e in found[:MAX_ERRORS_PER_DOCUMENT]
        ]
        if len(found) > MAX_ERRORS_PER_DOCUMENT:
            more = len(found) - MAX_ERRORS_PER_DOCUMENT
            errors.append(ManifestError(f"... and {more} more error(s) in this document", **where))
        return errors


def _unknown_kind(api_version: Any, kind: Any) -> str:
    if not api_version or not kind:
        missing = "apiVersion" if not api_version else "kind"
        return f"'{missing}' is missing; every manifest needs apiVersion and kind"
    known = ", ".join(f"{k} ({v})" for v, k in KINDS)
    same_kind = [v for v, k in KINDS if k == kind]
    if same_kind:
        expected = " or ".join(repr(v) for v in same_kind)
        return f"unknown apiVersion {quote(api_version)} for kind {kind}: expected {expected}"
    return f"unknown kind {quote(kind)} (apiVersion {quote(api_version)}); fnevents reads: {known}"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = shown(str(part), 60)
            out += f".{part}" if out else part
    return out


def _describe(error: dict[str, Any]) -> str:
    kind, message, value = error["type"], error["msg"], error.get("input")
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return _unknown_field(str(error["loc"][-1]))
    message = shorten(message.removeprefix("Value error, "), 1000)
    if kind.endswith(("_type", "_parsing")) or kind.startswith(("literal", "greater", "less")):
        return f"{message[0].lower()}{message[1:]} (got {quote(value)})"
    return message


def _unknown_field(name: str) -> str:
    if len(name) > 60:  # no field name is that long: no guess (and no slow comparison)
        return f"unknown field {quote(name)}"
    vocabulary = {f for model in _all_models() for f in model.model_fields}
    guess = difflib.get_close_matches(name, vocabulary, n=1)
    if guess and guess[0] == name:  # a field of another kind or level, not of this one
        return f"unknown field '{name}' here (it belongs elsewhere, not in this mapping)"
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    return f"unknown field '{name}'{hint}"


def _all_models() -> Iterator[type[BaseModel]]:
    pending: list[type[BaseModel]] = [Model]
    while pending:
        model = pending.pop()
        yield model
        pending.extend(model.__subclasses__())
