"""Figures about the layout, for reviews: ``python -m tests.architecture.report [ROOT]``.

Prints, for the checkout at ROOT (default: this one): the module and package import
cycles, how many imports hide behind ``TYPE_CHECKING`` or inside functions, how many
imports cross between the top-level packages, and, per broker, how many files and folders
its code is spread over. Nothing is imported; everything is read with ``ast``.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

from tests.architecture.graph import PACKAGES, cycles, import_graph, module_files

BROKERS = ("memory", "redis", "kafka", "jetstream", "mqtt", "dapr")


def hidden_imports(root: Path) -> tuple[int, int]:
    """(imports under ``if TYPE_CHECKING:``, imports inside a function body), each once."""
    typing_only = local = 0
    for path in module_files(root).values():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                typing_only += sum(isinstance(n, ast.Import | ast.ImportFrom) for n in node.body)
        local += _imports_in_functions(tree, inside=False)
    return typing_only, local


def _imports_in_functions(node: ast.AST, inside: bool) -> int:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return int(inside)
    inside = inside or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    return sum(_imports_in_functions(child, inside) for child in ast.iter_child_nodes(node))


def cross_package(graph: dict[str, set[str]]) -> Counter[tuple[str, str]]:
    """Imports from one top-level package into another, by (from, to)."""
    counts: Counter[tuple[str, str]] = Counter()
    for module, targets in graph.items():
        for target in targets:
            a, b = module.split(".")[0], target.split(".")[0]
            if a != b:
                counts[(a, b)] += 1
    return counts


def broker_spread(root: Path) -> dict[str, tuple[int, int, int]]:
    """broker -> (files, folders, lines) of the modules with a path part named after it
    (``events/bus/redis_streams.py``, ``triggers/redis_state.py``, ``events/brokers/redis/``)."""
    spread = {}
    for broker in BROKERS:
        mine = [
            path
            for path in module_files(root, PACKAGES).values()
            if any(part.startswith(broker) for part in path.relative_to(root).with_suffix("").parts)
        ]
        lines = sum(len(p.read_text().splitlines()) for p in mine)
        spread[broker] = (len(mine), len({p.parent for p in mine}), lines)
    return spread


def main(root: Path) -> None:
    graph = import_graph(root)
    print(f"checkout: {root}")
    print(f"modules: {len(graph)}")
    module_cycles = cycles(graph)
    print(f"module cycles: {len(module_cycles)}")
    for cycle in module_cycles:
        print(f"  {' -> '.join(cycle)}")
    typing_only, local = hidden_imports(root)
    print(f"imports under TYPE_CHECKING: {typing_only}; inside functions: {local}")
    print("imports between top-level packages:")
    for (a, b), n in sorted(cross_package(graph).items()):
        print(f"  {a} -> {b}: {n}")
    print("broker code: files, folders, lines")
    for broker, (n, folders, lines) in broker_spread(root).items():
        print(f"  {broker:<10} {n:>3} files in {folders} folder(s), {lines} lines")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path.cwd())
