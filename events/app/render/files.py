"""The files a pod reads: the manifests as ``fnevents run`` must see them in the cluster.

Each ``-f`` file becomes a key of the ``fnevents-manifests`` ConfigMap, mounted at
``/etc/fnevents/manifests``; ``--components`` files too. A file is copied as written
unless one of its documents must change, and then only those documents change (the file
is written again from its parsed documents, with a header saying why):

- **sync Functions** get ``url``: the address of their Service, from
  :func:`events.app.render.names.function_url`, which is the Function field the runtime
  already reads for a Function that runs in another process
  (:func:`events.functions.address.remote_url`). So every Trigger or EventSource whose
  ``sink.ref`` names the Function posts to its Service, and nobody edits a manifest.
  They also get ``host: 0.0.0.0`` (to be reachable from the Service) and, when the port
  was 0 (a free one), ``port: 8080``. A ``url`` the manifest sets is kept.
- **HTTP ingest** events listening on a loopback ``host`` get ``0.0.0.0``.
- a **Component replaced** by one of ``--components`` (same kind, namespace and name) is
  left out, since the replacement is in the ConfigMap as well and the pod's ``fnevents
  run`` reads both from one directory.
- a **v1 Secret** goes to the ``fnevents-secrets`` Secret instead (mounted at
  ``/etc/fnevents/secrets``), so no secret value sits in a ConfigMap.

A Function's ``.py`` source is copied beside its manifest (ConfigMap keys are flat, so
``spec.source`` becomes the key when the file was in another directory). A module name
is left alone: it must be installed in the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from events.app.catalog import Catalog, key_of
from events.app.render import names
from events.manifests.loader import Loaded, Origin, manifest_files, read_yaml

MANIFESTS_DIR = "/etc/fnevents/manifests"
SECRETS_DIR = "/etc/fnevents/secrets"
DEFAULT_FUNCTION_PORT = 8080
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Files:
    """ConfigMap and Secret contents (key -> text), and what the rewrite did."""

    manifests: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    function_ports: dict[tuple[str, str], int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def collect(files: list[str], components: list[str], catalog: Catalog, namespace: str) -> Files:
    """The ConfigMap and Secret contents for the manifests of ``catalog``."""
    by_origin = {item.origin: item for item in catalog.resources.values()}
    out = Files()
    used: set[str] = set()
    paths, _ = manifest_files([*files, *components])  # load_catalog reported any error
    for path in paths:
        _add_file(path, by_origin, catalog, namespace, out, used)
    return out


def _add_file(
    path: Path,
    by_origin: dict[Origin, Loaded],
    catalog: Catalog,
    namespace: str,
    out: Files,
    used: set[str],
) -> None:
    text = path.read_text()
    kept: list[Any] = []
    changes: list[str] = []
    secrets: list[Any] = []
    for number, document in read_yaml(text, str(path)):
        item = by_origin.get(Origin(str(path), number))
        if item is None or catalog.resources.get(key_of(item)) is not item:
            changes.append(f"document {number} left out: replaced by --components")
        elif item.kind == "Secret":
            secrets.append(document)
            changes.append(f"document {number} (Secret {item.name}) moved to {names.SECRETS}")
        else:
            kept.append(_rewrite(item, document, path, namespace, out, used, changes))
    key = names.config_key(path.parts, used)
    if secrets:
        out.secrets[key] = _dump(secrets, [])
    if kept:
        out.manifests[key] = _dump(kept, [f"{path}: {c}" for c in changes]) if changes else text


def _rewrite(
    item: Loaded,
    document: Any,
    path: Path,
    namespace: str,
    out: Files,
    used: set[str],
    changes: list[str],
) -> Any:
    if item.kind == "Function":
        _copy_source(item, document, path, out, used, changes)
        if item.resource.spec.input is None:
            _serve_function(item, document, namespace, out, changes)
    elif item.kind == "EventSource":
        for event, settings in item.resource.spec.http.items():
            if settings.host in _LOOPBACK:
                document["spec"]["http"][event]["host"] = "0.0.0.0"
                changes.append(f"EventSource {item.name} http {event}: host 0.0.0.0")
    return document


def _serve_function(
    item: Loaded, document: Any, namespace: str, out: Files, changes: list[str]
) -> None:
    spec = item.resource.spec
    port = spec.port or DEFAULT_FUNCTION_PORT
    out.function_ports[(item.namespace, item.name)] = port
    written = document["spec"]
    written["host"], written["port"] = "0.0.0.0", port
    if not spec.url:
        written["url"] = names.function_url(item, namespace, port)
    changes.append(f"Function {item.name}: served on 0.0.0.0:{port} at {written.get('url')}")


def _copy_source(
    item: Loaded, document: Any, path: Path, out: Files, used: set[str], changes: list[str]
) -> None:
    source = item.resource.spec.source
    if not source.endswith(".py"):
        return
    file = path.parent / source
    if not file.is_file():
        out.warnings.append(
            f"Function {item.namespace}/{item.name}: {file} not found; it must be in the image"
        )
        return
    key = names.config_key(file.parts, used)
    out.manifests[key] = file.read_text()
    if key != source:
        document["spec"]["source"] = key
        changes.append(f"Function {item.name}: source {source} copied as {key}")


def _dump(documents: list[Any], header: list[str]) -> str:
    lines = ["Written by `fnevents render` from the manifests given to it:", *header]
    head = "".join(f"# {line}\n" for line in lines)
    body = yaml.safe_dump_all(documents, sort_keys=False, width=100, allow_unicode=True)
    return head + body
