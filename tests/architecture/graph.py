"""The project's import graph, built from the source with ``ast`` (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("events", "sources", "triggers")

#: Which layer a package belongs to; imports may only point to the same layer or lower.
#: The first matching prefix wins, so the more specific names come first.
LAYERS: tuple[tuple[str, int], ...] = (
    ("events.cli", 5),
    ("events.app", 4),
    ("events.functions", 3),
    ("events.delivery", 3),
    ("events.deadletters", 3),
    ("sources", 3),
    ("triggers", 3),
    ("events.brokers", 2),
    ("events.bus", 1),
    ("events", 0),  # cloudevent, errors, durations, types, bindings, manifests, observability
)


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterable[tuple[str, str | None]]:
    """(module, name) pairs one import statement names; ``name`` is None for ``import x``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            yield base, alias.name


def _resolve(target: str, name: str | None, modules: Mapping[str, Path]) -> str | None:
    """The project module an import reaches: ``from a import b`` is ``a.b`` if that is a
    module, else ``a``; outside the project it is None."""
    if name is not None and f"{target}.{name}" in modules:
        return f"{target}.{name}"
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """module -> the project modules it imports, by any import statement anywhere in it."""
    modules = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(module, set())
        for node in ast.walk(tree):
            for target, name in _imported(node, module, is_package):
                resolved = _resolve(target, name, modules)
                if resolved is not None and resolved != module:
                    edges.add(resolved)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more nodes, sorted (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: Mapping[str, Iterable[str]], group: list[str]) -> list[str]:
    """A shortest path from ``group[0]`` back to itself inside ``group`` (one of
    :func:`cycles`), to show a reader the imports that close the loop."""
    members, start = set(group), group[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return paths[node]
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    return group


def package_of(module: str) -> str:
    """The folder a module sits in; a package (``__init__``) is its own folder."""
    if (ROOT / module.replace(".", "/") / "__init__.py").exists():
        return module
    return module.rpartition(".")[0] or module


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} is in no layer; add its package to LAYERS")


def private_imports(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Imports of an underscore name (or module) that belongs to another package."""
    modules = module_files(root, packages)
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        home = package_of(module)
        for node in ast.walk(tree):
            for target, name in _imported(node, module, path.name == "__init__.py"):
                resolved = _resolve(target, name, modules)
                if resolved is None or package_of(resolved) == home:
                    continue
                names = [*resolved.split("."), name or ""]
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    found.append(f"{module} imports {'.'.join(private)} from {resolved}")
    return found
