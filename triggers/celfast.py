"""A plain-Python evaluator for the commonest filter shapes, proven against the engine.

Most trigger filters are a few tests joined by ``&&``/``||``/``!``: an attribute against
a string (``event.type == "com.example.telemetry"``), a data field against a number
(``event.data.speed > 80.0``), membership in a list of strings, ``has(...)``. For those,
handing the engine a context costs far more than the test itself (the engine converts
every value on each call). :func:`compile_fast` recognizes such an expression and gives
a function that answers True or False *only when it is sure the engine would give the
same answer without an error*, and None otherwise, in which case the caller runs the
engine, which then reports its own error exactly as before.

What makes "sure" (each rule is checked against the engine on generated cases in
``tests/fastpaths/test_cel_fast.py``):

- The engine converts its whole context before evaluating, and a value it cannot convert
  (a lone surrogate in a string, a set, an arbitrary object) is an error whatever the
  expression. So every value the general path would hand over (each attribute the
  expression names, and each top-level data field it names) must first be a plain
  scalar: ``str`` without lone surrogates, ``int`` within +-2**53, a finite-or-infinite
  (not NaN) ``float``, ``bool``, ``bytes`` or None. Anything else: None (ask the engine).
- Data must be a JSON object (a ``dict``) when a data field is named; a missing data or
  field is an evaluation error on that leaf.
- A leaf is an error (not False) when its value has another type than the literal's: the
  engine's heterogeneous comparisons (``3 == "a"`` is false, ``true > 80.0`` an error) are
  left to the engine.
- Numbers compare by value across int and double, as the engine does: an int converts
  exactly to a double within +-2**53, which both the values and the literals must be in.
- ``&&`` and ``||`` are CEL's commutative logic: ``false && error`` is false and
  ``true || error`` is true, in either order; an error anywhere else makes the whole
  answer "not sure".
- Precedence: ``!`` binds tighter than ``==`` in CEL, so ``!`` is accepted only before
  ``(``, ``has(`` or another ``!``.

The grammar (anything else gives no fast path)::

    expr    := and ("||" and)*
    and     := unary ("&&" unary)*
    unary   := "!" ("!" unary | "(" expr ")" | has) | "(" expr ")" | has | test
    has     := "has" "(" (event.NAME | event.data.NAME | data.NAME) ")"   NAME != data
    test    := path ("==" | "!=") string | path OP number | path "in" "[" strings "]"
    path    := event.NAME | event.data.NAME | data.NAME                    NAME != data
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from events.cloudevent import CloudEvent

#: Integers a double holds exactly: int/double comparisons agree with the engine here.
_EXACT = 2**53
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"[^"\\\r\n]*"|'[^'\\\r\n]*')
    | (?P<number>(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\[|\]|,|\.|-)
    )""",
    re.VERBOSE,
)
_END = re.compile(r"\s*\Z")

#: values: attribute name -> value (None: absent); data: the event's data (None or a dict)
Values = dict[str, Any]
Node = Callable[[Values, Any], bool | None]  # True, False, or None: an error in the engine
FastFilter = Callable[[CloudEvent], bool | None]


class _NotFast(Exception):
    """The expression is outside the grammar: no fast path."""


def compile_fast(expression: str) -> FastFilter | None:
    """A sure-or-None evaluator for ``expression``, or None if it is not a known shape.

    Call only with an expression the engine compiled and the filter checks accepted."""
    try:
        tokens = _tokenize(expression)
        parser = _Parser(tokens)
        root = parser.expression()
        if parser.position != len(tokens):
            raise _NotFast
    except _NotFast:
        return None
    return _evaluator(root, tuple(sorted(parser.attributes)), tuple(sorted(parser.fields)))


def _evaluator(root: Node, attributes: tuple[str, ...], fields: tuple[str, ...]) -> FastFilter:
    def evaluate(event: CloudEvent) -> bool | None:
        values: Values = {}
        get = event.get
        for name in attributes:
            value = get(name)
            if value is not None and not _plain(value):
                return None
            values[name] = value
        data = event.data
        if fields and data is not None:
            if type(data) is not dict:
                return None  # the engine gets the whole value: leave it to the engine
            for name in fields:
                if name in data and not _plain(data[name]):
                    return None
        return root(values, data)

    return evaluate


def _plain(value: Any) -> bool:
    """Whether the engine converts ``value`` without error and compares it like Python."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _utf8(value)
    if kind is int:
        return -_EXACT <= value <= _EXACT
    if kind is float:
        return value == value  # not NaN
    return kind is bool or kind is bytes


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the engine cannot convert it
        return False
    return True


# -- parsing -----------------------------------------------------------------------------


def _tokenize(expression: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while not _END.match(expression, position):
        match = _TOKEN.match(expression, position)
        if match is None or match.lastgroup is None:
            raise _NotFast
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.attributes: set[str] = set()
        self.fields: set[str] = set()

    def peek(self) -> str:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else ""

    def _next_kind(self) -> str:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else ""

    def take(self, kind: str | None = None, text: str | None = None) -> str:
        if self.position >= len(self.tokens):
            raise _NotFast
        got_kind, got = self.tokens[self.position]
        if (kind is not None and got_kind != kind) or (text is not None and got != text):
            raise _NotFast
        self.position += 1
        return got

    def expression(self) -> Node:
        nodes = [self.conjunction()]
        while self.peek() == "||":
            self.take("op", "||")
            nodes.append(self.conjunction())
        return nodes[0] if len(nodes) == 1 else _any(tuple(nodes))

    def conjunction(self) -> Node:
        nodes = [self.unary()]
        while self.peek() == "&&":
            self.take("op", "&&")
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else _all(tuple(nodes))

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take("op", "!")
            if self.peek() not in ("!", "(", "has"):  # `!a == b` is `(!a) == b` in CEL
                raise _NotFast
            return _not(self.unary())
        if self.peek() == "(":
            self.take("op", "(")
            node = self.expression()
            self.take("op", ")")
            return node
        if self.peek() == "has" and self._next_kind() == "name":
            return self.has()
        return self.test()

    def has(self) -> Node:
        self.take("name", "has")
        self.take("op", "(")
        kind, name = self.path()
        self.take("op", ")")
        return _has_attribute(name) if kind == "attribute" else _has_field(name)

    def path(self) -> tuple[str, str]:
        """("attribute", name) for event.NAME; ("field", name) for event.data.NAME, data.NAME."""
        root = self.take("name")
        if root == "event":
            self.take("op", ".")
            name = self.take("name")
            if name != "data":
                self.attributes.add(name)
                return "attribute", name
        elif root != "data":
            raise _NotFast
        self.take("op", ".")
        field = self.take("name")
        if field == "data" or self.peek() == ".":  # nested data: the engine gets whole maps
            raise _NotFast
        self.fields.add(field)
        return "field", field

    def test(self) -> Node:
        kind, name = self.path()
        operator_ = self.take("op") if self.peek() != "in" else self.take("name", "in")
        if operator_ == "in":
            return _leaf(kind, name, _member(self.strings()))
        if operator_ not in _OPS:
            raise _NotFast
        literal = self.literal()
        if isinstance(literal, str):
            if operator_ not in ("==", "!="):
                raise _NotFast  # string ordering is left to the engine
            return _leaf(kind, name, _string_test(_OPS[operator_], literal))
        return _leaf(kind, name, _number_test(_OPS[operator_], literal))

    def literal(self) -> str | int | float:
        negative = self.peek() == "-"
        if negative:
            self.take("op", "-")
        if not negative and self._next_kind() == "string":
            return self.take("string")[1:-1]
        text = self.take("number")
        value: int | float
        if "." in text or "e" in text or "E" in text:
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise _NotFast
        else:
            value = int(text)
            if value > _EXACT:
                raise _NotFast
        return -value if negative else value

    def strings(self) -> frozenset[str]:
        self.take("op", "[")
        items: set[str] = set()
        while self.peek() != "]":
            items.add(self.take("string")[1:-1])
            if self.peek() != "]":
                self.take("op", ",")
        self.take("op", "]")
        return frozenset(items)


# -- nodes: each gives True, False, or None for "the engine would raise here" -------------

Test = Callable[[Any], bool | None]


def _leaf(kind: str, name: str, test: Test) -> Node:
    if kind == "attribute":

        def attribute(values: Values, data: Any) -> bool | None:
            value = values[name]
            return None if value is None else test(value)

        return attribute

    def field(values: Values, data: Any) -> bool | None:
        if data is None or name not in data:
            return None  # no data, or no such field: an error in the engine
        return test(data[name])

    return field


def _string_test(compare: Callable[[Any, Any], bool], literal: str) -> Test:
    def test(value: Any) -> bool | None:
        return compare(value, literal) if type(value) is str else None

    return test


def _number_test(compare: Callable[[Any, Any], bool], literal: float) -> Test:
    def test(value: Any) -> bool | None:
        kind = type(value)
        return compare(value, literal) if kind is float or kind is int else None

    return test


def _member(items: frozenset[str]) -> Test:
    def test(value: Any) -> bool | None:
        return value in items if type(value) is str else None

    return test


def _has_attribute(name: str) -> Node:
    def has(values: Values, data: Any) -> bool | None:
        return values[name] is not None

    return has


def _has_field(name: str) -> Node:
    def has(values: Values, data: Any) -> bool | None:
        return None if data is None else name in data

    return has


def _all(nodes: tuple[Node, ...]) -> Node:
    def conjunction(values: Values, data: Any) -> bool | None:
        result: bool | None = True
        for node in nodes:
            value = node(values, data)
            if value is False:
                return False  # false && error is false, in either order
            if value is None:
                result = None
        return result

    return conjunction


def _any(nodes: tuple[Node, ...]) -> Node:
    def disjunction(values: Values, data: Any) -> bool | None:
        result: bool | None = False
        for node in nodes:
            value = node(values, data)
            if value is True:
                return True  # true || error is true, in either order
            if value is None:
                result = None
        return result

    return disjunction


def _not(node: Node) -> Node:
    def negation(values: Values, data: Any) -> bool | None:
        value = node(values, data)
        return None if value is None else not value

    return negation
