"""Where an OpenFunction Function's code is on this machine, and how to call it.

OpenFunction builds an image from ``spec.build.srcRepo``; fnevents imports Python
from a local path instead:

- ``--source NAME=PATH`` (a ``.py`` file, or a directory holding it) wins;
- else ``build.srcRepo.url`` when it is a local directory or a ``file://`` URL
  (relative to the manifest's folder), joined with ``sourceSubPath``;
- the file in a directory is ``GOOGLE_FUNCTION_SOURCE`` or ``FUNC_SRC`` from
  ``build.env``, else ``main.py``; the target is ``FUNC_NAME``, else
  ``GOOGLE_FUNCTION_TARGET``.

The framework follows the builder: ``openfunction/gcp-builder`` builds with Google's
functions framework (``GOOGLE_FUNCTION_SIGNATURE_TYPE`` ``http`` or ``cloudevent``);
any other Python builder, none, or ``--source`` means OpenFunction's own
``(context, data)`` style (``ofn``). A Go, Java, Node.js, .NET or WasmEdge
Function is not hostable: ``validate`` says so and shows the rest, ``run`` refuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from urllib.parse import unquote, urlparse

from events.manifests.loader import Loaded
from events.manifests.ofn_function import Build

#: Builder image name fragments that build something fnevents cannot import.
_OTHER_LANGUAGES = {
    "Go": r"builder-go|/go\d|go1\d",
    "Java": r"java",
    "Node.js": r"node",
    ".NET": r"dotnet",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PLACEHOLDER_TARGET = "not_hostable"
SIGNATURES = {"http": "google-http", "cloudevent": "google-cloudevent"}


@dataclass
class Hosting:
    source: str = ""
    target: str = PLACEHOLDER_TARGET
    framework: str = "ofn"
    unhostable: str | None = None  # why fnevents cannot run it (validate warns, run refuses)
    error: str | None = None  # a manifest error
    field: str | None = None
    notes: list[str] = dataclass_field(default_factory=list)


def locate(item: Loaded, source: str | None) -> Hosting:
    spec = item.resource.spec
    build = spec.build or Build()
    hosting = Hosting()
    language = _language(build.builder)
    if spec.workloadRuntime == "WasmEdge":
        language = "WebAssembly (WasmEdge)"
    if language and source is None:
        hosting.unhostable = (
            f"not hostable here: build.builder '{build.builder}' builds {language}, and "
            "fnevents hosts Python functions only. Run it elsewhere (OpenFunction, or its "
            "image) and use its URL as a sink (sink.uri on the Trigger or EventSource), or "
            "point --source NAME=PATH at a Python port"
        )
        return hosting
    repo = build.srcRepo
    if source is None and (repo is None or not repo.url):
        hosting.unhostable = (
            "no code to run: the Function has no build.srcRepo.url (its code is only in "
            f"the image); pass --source {item.name}=PATH to run a Python version of it"
        )
        return hosting
    if language:
        hosting.notes.append(
            f"build.builder '{build.builder}' builds {language}; --source runs the Python "
            f"code at {source} instead"
        )
    _framework(build, hosting)
    if hosting.error:
        return hosting
    target = build.env_value("FUNC_NAME") or build.env_value("GOOGLE_FUNCTION_TARGET")
    if not target or not _IDENTIFIER.fullmatch(target):
        hosting.unhostable = (
            "no Python function to call: set build.env.FUNC_NAME (or GOOGLE_FUNCTION_TARGET) "
            f"to its name{f' (got {target!r})' if target else ''}"
        )
        return hosting
    hosting.target = target
    path = _path(item, build, source, hosting)
    if path is not None:
        hosting.source = str(path)
    return hosting


def _language(builder: str | None) -> str | None:
    name = (builder or "").lower()
    if "gcp-builder" in name or "python" in name or re.search(r"py3\d", name):
        return None
    return next((lang for lang, p in _OTHER_LANGUAGES.items() if re.search(p, name)), None)


def _framework(build: Build, hosting: Hosting) -> None:
    if "gcp-builder" not in (build.builder or ""):
        return
    signature = build.env_value("GOOGLE_FUNCTION_SIGNATURE_TYPE") or "http"
    if signature not in SIGNATURES:
        hosting.error = f"expected 'http' or 'cloudevent', got {signature!r}"
        hosting.field = "spec.build.env.GOOGLE_FUNCTION_SIGNATURE_TYPE"
        return
    hosting.framework = SIGNATURES[signature]


def _path(item: Loaded, build: Build, source: str | None, hosting: Hosting) -> Path | None:
    base = Path(item.origin.file).parent
    if source is not None:
        where = Path(source).expanduser()
        where = where if where.is_absolute() else Path.cwd() / where
        return _file_in(where, build, hosting, f"--source {item.name}={source}")
    repo = build.srcRepo
    url = repo.url if repo is not None else None
    if not url:
        hosting.unhostable = (
            "no code to run: the Function has no build.srcRepo.url (its code is only in "
            f"the image); pass --source {item.name}=PATH"
        )
        return None
    local = _local_dir(url, base)
    if local is None:
        hosting.unhostable = (
            f"the code is at {url}, which fnevents does not fetch: pass --source "
            f"{item.name}=PATH (a local checkout), or set build.srcRepo.url to a local "
            "directory or file:// URL"
        )
        return None
    if repo is not None and repo.sourceSubPath:
        local = local / repo.sourceSubPath
    return _file_in(local, build, hosting, "spec.build.srcRepo")


def _local_dir(url: str, base: Path) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme or url.startswith("git@"):
        return None
    path = Path(url).expanduser()
    return path if path.is_absolute() else base / path


def _file_in(where: Path, build: Build, hosting: Hosting, said: str) -> Path | None:
    if where.is_dir():
        name = build.env_value("GOOGLE_FUNCTION_SOURCE") or build.env_value("FUNC_SRC")
        where = where / (name or "main.py")
    if not where.is_file() or where.suffix != ".py":
        hosting.unhostable = f"{said}: no Python file at {where}"
        return None
    return where.resolve()
