"""YAML text to Python values, for the manifest loader: fast, and bounded on hostile input.

YAML is parsed by libyaml (the parser of PyYAML's ``CSafeLoader``) when it is installed,
else by PyYAML's pure-Python parser (as ``SafeLoader``); both give the same values, and
errors the same line and column (300 documents 300 levels deep took 16 s in the
pure-Python parser). Hostile input is refused quickly with a clear message, before it
costs much memory or time:

- the composer stops at the ``MAX_NODES``-th value of a file (scalars, mappings and
  lists) and at the ``MAX_DEPTH``-th level of nesting;
- each document's node graph is then measured before it becomes Python values: with
  aliases expanded (an alias ``*name`` repeats its anchor's whole value wherever it is
  used, so ten short lines can stand for billions of values) it must still fit in
  ``MAX_NODES`` and ``MAX_DEPTH``; no value may contain itself; no string may hold half
  of a UTF-16 surrogate pair (``"\\ud800"``, which is no character and cannot be
  printed);
- a value PyYAML cannot construct (``2024-02-30``, ``!!int abc``, an integer of
  5,000 digits) is an error at its line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from events.errors import ManifestError, quote, shorten, shown

#: The deepest nesting of mappings and lists in a document (aliases expanded).
MAX_DEPTH = 100
#: The most values (scalars, mappings and lists) in one file once aliases are expanded.
MAX_NODES = 100_000


class _Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor whose every failure is a ConstructorError at the value's position
    (PyYAML's own raises ValueError, KeyError or IndexError for ``!!int abc``,
    ``!!bool maybe``, ``2024-02-30`` or an integer of 5,000 digits)."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 -- any constructor failure is the value's fault
            raise ConstructorError(None, None, _unreadable(node, exc), node.start_mark) from None


def _unreadable(node: Node, exc: Exception) -> str:
    tag = node.tag.removeprefix("tag:yaml.org,2002:")
    value = quote(node.value) if isinstance(node, ScalarNode) else f"a {node.id}"
    if tag == "bool":
        reason = "it is not a YAML boolean (true or false)"
    elif isinstance(exc, KeyError | IndexError):
        reason = f"it is not a valid {tag}"
    else:
        reason = shorten(str(exc) or type(exc).__name__)
    return f"cannot read {value} as {tag}: {reason}"


class _Refused(yaml.YAMLError):
    """A limit reached while composing: what, where (a mark) and the field path."""

    def __init__(self, problem: str, mark: Any, field: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark
        self.field = field


class _Composer(yaml.composer.Composer):
    """PyYAML's composer, counting as it goes: it stops at the MAX_NODES-th value of a
    file or the MAX_DEPTH-th level of nesting, before either costs memory or stack (the
    parser's events come one at a time; nodes are what takes room)."""

    def __init__(self) -> None:
        super().__init__()
        self._values = 0
        self._labels: list[str] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if isinstance(index, int):
            label = f"[{index}]"
        elif isinstance(index, ScalarNode):
            label = f".{shown(index.value, 60)}"
        elif isinstance(index, Node):
            label = ".<key>"
        else:
            label = ""  # a document's root, or a mapping key
        event = self.peek_event()
        if not isinstance(event, yaml.AliasEvent):
            self._values += 1
            if self._values > MAX_NODES:
                raise self._refuse(f"too large: more than {MAX_NODES} values in this file", event)
            if isinstance(event, yaml.CollectionStartEvent) and len(self._labels) >= MAX_DEPTH:
                raise self._refuse(f"nested deeper than {MAX_DEPTH} levels", event, label)
        self._labels.append(label)
        try:
            return super().compose_node(parent, index)
        finally:
            self._labels.pop()

    def _refuse(self, problem: str, event: yaml.Event, label: str = "") -> _Refused:
        field = "".join([*self._labels, label]).removeprefix(".")
        return _Refused(problem, event.start_mark, field)


class PurePythonLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _Composer,
    _Constructor,
    yaml.resolver.Resolver,
):
    """PyYAML's pure-Python parser (as ``SafeLoader``), our composer and constructor."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


try:
    from yaml.cyaml import CParser
except ImportError:  # pragma: no cover -- PyYAML built without libyaml
    CParser = None

if CParser is not None:

    class LibyamlLoader(_Composer, CParser, _Constructor, yaml.resolver.Resolver):  # type: ignore[misc]
        """libyaml's parser (as ``CSafeLoader``: it reads text into events many times
        faster than PyYAML's), our composer and constructor."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Composer.__init__(self)
            _Constructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    Loader: type = LibyamlLoader
else:  # pragma: no cover -- libyaml is not installed
    Loader = PurePythonLoader

#: A file whose only fault libyaml reports as a surrogate escape is read again by the
#: pure-Python parser (which reads the escape) to name the field, if it is this small.
_RETRY_BYTES = 256 * 1024


def read_yaml(text: str, file: str, loader: type | None = None) -> list[tuple[int, Any]]:
    """``(document number, value)`` of every non-empty document in ``text``; a
    ManifestError names the file, the line and column, and the document and field
    when the problem is in one."""
    try:
        return _read_yaml(text, file, loader or Loader)
    except ManifestError as exc:
        if loader is None and _surrogate_escape(exc) and len(text) <= _RETRY_BYTES:
            try:
                _read_yaml(text, file, PurePythonLoader)
            except ManifestError as named:
                if "surrogate" in named.problem:
                    raise named from None
        raise


def _surrogate_escape(exc: ManifestError) -> bool:
    return Loader is not PurePythonLoader and "invalid Unicode character escape" in exc.problem


def _read_yaml(text: str, file: str, loader_class: type) -> list[tuple[int, Any]]:
    loader = None
    documents: list[tuple[int, Any]] = []
    budget = _Budget()
    number = 1  # the document being read
    try:
        loader = loader_class(text)  # PyYAML's reader checks every character at once
        number = 0
        while True:
            number += 1
            if not loader.check_node():
                break
            node = loader.get_node()
            if node is None:
                continue
            _measure(node, budget, file, number)
            document = loader.construct_document(node)
            if document is not None:
                documents.append((number, document))
    except ManifestError:  # a limit _measure found
        raise
    except _Refused as exc:
        raise ManifestError(
            _yaml_problem(exc), file=file, document=number, field=exc.field or None
        ) from None
    except yaml.YAMLError as exc:
        problem = f"malformed YAML: {_yaml_problem(exc)}"
        raise ManifestError(problem, file=file, document=number) from None
    except RecursionError:  # the parser nests a call per level: deeper than it can go
        problem = f"malformed YAML: nested far deeper than {MAX_DEPTH} levels, the most allowed"
        raise ManifestError(problem, file=file, document=number) from None
    except ValueError as exc:  # PyYAML's own scanner: chr() of an escape past U+10FFFF
        mark = getattr(loader, "get_mark", lambda: None)()
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = "an escape past \\U0010FFFF, the last character" if "chr()" in str(exc) else exc
        problem = f"malformed YAML: {shorten(str(reason))}{where}"
        raise ManifestError(problem, file=file, document=number) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class _Budget:
    """What is left of the per-file limits."""

    nodes: int = MAX_NODES


class _Frame:
    """A mapping or list being measured: which child is next, and what they add up to.
    A mapping's children are its keys and values in turn (child ``2i`` is key ``i``)."""

    __slots__ = ("count", "depth", "mapping", "next", "node", "size")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.mapping = isinstance(node, MappingNode)
        self.count = len(node.value) * (2 if self.mapping else 1)
        self.next = 0
        self.size = 1
        self.depth = 1

    def child(self, index: int) -> Node:
        return self.node.value[index >> 1][index & 1] if self.mapping else self.node.value[index]

    def label(self, index: int) -> str:
        """The field-path step to child ``index``."""
        if not self.mapping:
            return f"[{index}]"
        key = self.node.value[index >> 1][0]
        name = f".{shown(key.value, 60)}" if isinstance(key, ScalarNode) else ".<key>"
        return name if index & 1 else f"{name} (the key)"


def _measure(root: Node, budget: _Budget, file: str, number: int) -> None:
    """Refuse a document whose values, aliases expanded, are too many or too deep, that
    contains itself, or that holds a lone surrogate -- without expanding anything: each
    distinct node is visited once, so an alias bomb costs no more than its text."""
    measured: dict[Node, tuple[int, int]] = {}  # node -> (values, depth), aliases expanded
    stack: list[_Frame] = []
    open_: set[Node] = set()  # the nodes on the stack

    def fail(problem: str, node: Node) -> ManifestError:
        # every frame's ``next`` is one past the child being measured
        field = "".join(f.label(f.next - 1) for f in stack)
        mark = node.start_mark
        return ManifestError(
            f"{problem} at line {mark.line + 1}, column {mark.column + 1}",
            file=file,
            document=number,
            resource=_node_label(root),
            field=field.removeprefix(".") or None,
        )

    def enter(node: Node) -> tuple[int, int] | None:
        """``node``'s (values, depth) when known at once; else it is pushed, None."""
        known = measured.get(node)
        if known is not None:
            return known
        if isinstance(node, ScalarNode):
            value = node.value
            if not value.isascii() and (found := _SURROGATE.search(value)):
                raise fail(
                    f"{quote(value)} holds \\u{ord(found[0]):04x}, half of a UTF-16 "
                    "surrogate pair, which is not a character: write the character itself, "
                    "or escape it as \\UXXXXXXXX (8 hex digits)",
                    node,
                )
            return (1, 0)
        if node in open_:
            raise fail(
                "this value contains itself (an alias inside the anchor it refers to); "
                "manifests cannot be recursive",
                node,
            )
        if len(stack) >= MAX_DEPTH:
            raise fail(f"nested deeper than {MAX_DEPTH} levels", node)
        open_.add(node)
        stack.append(_Frame(node))
        return None

    def add(frame: _Frame, size: int, depth: int, node: Node) -> None:
        frame.size += size
        if depth >= frame.depth:
            frame.depth = depth + 1
            if len(stack) + depth > MAX_DEPTH:
                raise fail(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", node)
        if frame.size > budget.nodes:
            raise fail(_too_many(budget), node)

    known = enter(root)
    while stack:
        frame = stack[-1]
        if frame.next < frame.count:
            child = frame.child(frame.next)
            frame.next += 1
            known = enter(child)
            if known is not None:
                add(frame, *known, child)
            continue
        stack.pop()
        open_.discard(frame.node)
        known = measured[frame.node] = (frame.size, frame.depth)
        if stack:
            add(stack[-1], *known, frame.node)
    assert known is not None
    budget.nodes -= known[0]


def _too_many(budget: _Budget) -> str:
    used = MAX_NODES - budget.nodes
    already = f" ({used} in the documents before it)" if used else ""
    return (
        f"too large: more than {MAX_NODES} values in this file{already} once aliases "
        "(*name) are expanded; an alias repeats its anchor's whole value wherever it "
        "is used"
    )


def _node_label(root: Node) -> str | None:
    """``kind/name`` read from a document's nodes (before it is constructed)."""
    if not isinstance(root, MappingNode):
        return None
    found: dict[str, Any] = {}
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value in ("kind", "metadata"):
            found[key.value] = value
    kind, metadata = found.get("kind"), found.get("metadata")
    if not isinstance(kind, ScalarNode):
        return None
    name = None
    if isinstance(metadata, MappingNode):
        for key, value in metadata.value:
            if isinstance(key, ScalarNode) and key.value == "name":
                name = value.value if isinstance(value, ScalarNode) else None
    return resource_label(kind.value, name)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = shorten(getattr(exc, "problem", None) or str(exc), 500)
    if "invalid Unicode character escape" in problem:
        problem += (
            " (an escape must name a character: \\ud800-\\udfff are halves of UTF-16 "
            "surrogate pairs, and there is none past \\U0010FFFF; write the character "
            "itself, or escape it as \\UXXXXXXXX)"
        )
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


def resource_label(kind: Any, name: Any) -> str | None:
    """``kind/name`` for messages, from what a document says (only if they are strings)."""
    kind = kind if isinstance(kind, str) and kind else None
    name = name if isinstance(name, str) and name else None
    if kind and name:
        return f"{shown(kind, 60)}/{shown(name, 60)}"
    return shown(kind, 60) if kind else None
