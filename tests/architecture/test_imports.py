"""The import graph, read from the source with ``ast``: no cycles, layers point one way.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions:
a cycle hidden there is still a cycle a reader has to untangle. A package here is the
folder a module sits in (``events.brokers.redis``, ``sources``), so two modules of
different folders that import each other through any chain fail the package test even
when no single module cycle exists.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.graph import (
    ROOT,
    cycles,
    import_graph,
    layer_of,
    module_files,
    package_of,
    private_imports,
    shortest_cycle,
)


def _show(graph: dict[str, set[str]], found: list[list[str]]) -> str:
    """Each cycle as a real chain of imports that closes the loop."""
    lines = []
    for group in found:
        path = shortest_cycle(graph, group)
        lines.append(" -> ".join([*path, path[0]]) + f"  ({len(group)} in the loop)")
    return "\n".join(lines)


def test_no_module_imports_itself_through_a_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, f"import cycles between modules:\n{_show(graph, found)}"


def test_no_package_imports_itself_through_a_cycle() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        home = package_of(module)
        edges = packages.setdefault(home, set())
        edges.update(package_of(t) for t in targets if package_of(t) != home)
    found = cycles(packages)
    assert not found, f"import cycles between packages:\n{_show(packages, found)}"


def test_layers_point_downward() -> None:
    """manifests and the core <- bus <- brokers <- sources, triggers, functions,
    delivery, deadletters <- app (see the README's Layout section)."""
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_module_takes_another_packages_private_names() -> None:
    found = private_imports()
    assert not found, "imports of another package's private names:\n" + "\n".join(found)


def test_the_checks_see_a_cycle_when_there_is_one(tmp_path: Path) -> None:
    """The detector itself: a two-module cycle hidden behind TYPE_CHECKING is found."""
    package = tmp_path / "loop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loop.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from loop.a import A\n"
    )
    graph = import_graph(tmp_path, ("loop",))
    assert cycles(graph) == [["loop.a", "loop.b"]]


def test_every_source_file_parses_and_is_in_the_graph() -> None:
    files = module_files(ROOT, ("events", "sources", "triggers"))
    graph = import_graph()
    assert len(files) > 50
    for module, path in files.items():
        ast.parse(path.read_text(), str(path))
        assert module in graph
