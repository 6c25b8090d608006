"""The ``cel`` clause of a filter: compile once, build a small context per event, never raise.

The rules (what variables mean, how data looks, what an error does) are stated
for users in :mod:`triggers.filters`; this module is how they are carried out.

The engine converts every Python value in the context to a CEL value on each
call, and that conversion is most of a filter's cost (profiled: ~85% of a call is
inside ``Program.execute``, and it grows with the size of what it is given). So
the expression is read once at compile time to learn what it looks at:

- when every use of ``event`` is a plain field selection (``event.type``,
  ``has(event.subject)``), the ``event`` map holds only those attributes;
- the data goes in only when the expression mentions ``data`` or ``event.data``;
- when every use of the data is a field selection (``data.speed``,
  ``event.data.gps.lat``) and the data is a JSON object, only those top-level
  fields are handed over.

Anything else (``event["type"]``, ``size(data)``, ``event.data.exists(...)``, a
variable passed whole) gets all of it, so the shortcut never changes a result;
``tests/triggers/test_filters.py`` checks that against the whole event.

Before any of that, the commonest shapes (attribute tests, data fields against numbers,
``&&``/``||``/``!``, ``in``, ``has``) are answered in plain Python by
:mod:`triggers.celfast` when it is sure of the engine's answer; when it is not (a missing
field, a wrong type, a value the engine could not convert), the engine runs as before
and reports its own error. ``tests/fastpaths/`` checks the two agree.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from events.cloudevent import CloudEvent
from events.errors import ExpressionError, quote, shorten
from triggers.celfast import FastFilter, compile_fast
from triggers.conditions import compile_cel, show_position

#: The variables a filter may use, and what they are (shown when an unknown one is used).
VARIABLES = {
    "event": "the CloudEvent: every attribute and extension by name, and event.data",
    "data": "short for event.data, null when the event has no data",
}
#: The functions the engine (common-expression-language) has; checked at load so a typo
#: such as ``startswith`` is an error then, not "no match" on every event.
FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "timestamp", "duration", "type", "dyn",
        "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
        "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
#: CEL's comprehension macros bind their first argument as a variable of their own.
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_TOKENS = re.compile(
    r"""(?P<string>[rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))"""
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<other>\S)",
    re.DOTALL,
)

ReportFailure = Callable[[str, CloudEvent], None]


@dataclass(frozen=True)
class _Token:
    kind: str  # "string", "name" or "other"
    text: str
    column: int  # 1-based, as CEL reports columns


@dataclass(frozen=True)
class Usage:
    """What an expression looks at, so the context holds only that."""

    event: bool  # the variable ``event`` is used
    attributes: frozenset[str] | None  # attributes selected from ``event``; None: all of them
    data: bool  # the variable ``data`` is used
    data_fields: frozenset[str] | None  # top-level fields selected from the data; None: all

    @property
    def event_data(self) -> bool:
        """Whether ``event.data`` is (or may be) read."""
        return self.event and (self.attributes is None or "data" in self.attributes)


class CelClause:
    """A compiled ``cel`` filter clause."""

    __slots__ = ("_attributes", "_fast", "_fields", "_program", "_usage", "expression")

    def __init__(self, expression: str, *, fast: bool = True) -> None:
        """``fast=False`` leaves out the plain-Python shortcut (the tests compare both)."""
        self.expression = expression
        analysed = _analyse(expression)
        if isinstance(analysed, str):
            raise ExpressionError(analysed)
        self._program, self._usage, self._attributes, self._fields, shortcut = analysed
        self._fast: FastFilter | None = shortcut if fast else None

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def has_fast_path(self) -> bool:
        return self._fast is not None

    def matches(self, event: CloudEvent, report: ReportFailure) -> bool:
        """True or False; an evaluation error or a non-boolean result is reported and False."""
        if self._fast is not None:
            sure = self._fast(event)
            if sure is not None:  # the engine gives this, without an error
                return sure
        try:
            result = self._program.execute(self.context(event))
        except Exception as exc:  # noqa: BLE001 -- any failure of the evaluator means no match
            report(_explain(exc), event)
            return False
        if result is True or result is False:
            return result
        report(f"gives {type(result).__name__} {quote(result)}, not true or false", event)
        return False

    def context(self, event: CloudEvent) -> dict[str, Any]:
        """The CEL variables for ``event``: only what the expression looks at."""
        usage = self._usage
        context: dict[str, Any] = {}
        data = event.data
        if data is not None and (usage.data or usage.event_data):
            data = self._data_view(data)
        if usage.event:
            names = self._attributes
            if names is None:
                attributes = event.attributes()
            else:
                attributes = {n: v for n in names if (v := event.get(n)) is not None}
            if data is not None and usage.event_data:
                attributes["data"] = data
            context["event"] = attributes
        if usage.data:
            context["data"] = data
        return context

    def _data_view(self, data: Any) -> Any:
        kind = type(data)
        if kind is dict and self._fields is not None:
            # the engine converts every value it is given; a field never read need not be
            return {name: data[name] for name in self._fields if name in data}
        if kind is bytearray or kind is memoryview:
            return bytes(data)  # CEL bytes; the library converts only ``bytes``
        return data


@functools.lru_cache(maxsize=1024)
def _analyse(
    expression: str,
) -> tuple[Any, Usage, tuple | None, tuple | None, FastFilter | None] | str:
    """The program, what it uses, its attributes and data fields, its plain-Python
    shortcut if it has one; or the error message. Remembered by text: one filter repeated
    by YAML aliases is analysed once."""
    try:
        program = compile_cel(expression, "filter")
        tokens = _tokenize(expression)
        _check_variables(expression, set(program.variables()), tokens)
        _check_functions(expression, program.functions(), tokens)
    except ExpressionError as exc:
        return str(exc)
    usage = usage_of(tokens)
    names = usage.attributes
    attributes = None if names is None else tuple(sorted(names - {"data"}))
    fields = None if usage.data_fields is None else tuple(sorted(usage.data_fields))
    return program, usage, attributes, fields, compile_fast(expression)


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):  # the library's KeyError text is only the key's repr
        return f"no such key: {exc}"
    return str(exc) or type(exc).__name__


def _tokenize(expression: str) -> list[_Token]:
    return [
        _Token(match.lastgroup or "other", match.group(), match.start() + 1)
        for match in _TOKENS.finditer(expression)
    ]


def _variable_uses(tokens: list[_Token]) -> list[tuple[int, _Token]]:
    """(index, token) of names used as variables: not a selected field, not a call."""
    uses = []
    for index, token in enumerate(tokens):
        if token.kind != "name":
            continue
        before = tokens[index - 1].text if index else ""
        after = tokens[index + 1].text if index + 1 < len(tokens) else ""
        if before != "." and after != "(":
            uses.append((index, token))
    return uses


def usage_of(tokens: list[_Token]) -> Usage:
    """Read the expression's tokens for what it uses (erring towards using more)."""
    uses = [(i, t.text) for i, t in _variable_uses(tokens) if t.text in VARIABLES]
    attributes: set[str] | None = set()
    fields: set[str] | None = set()
    for index, name in uses:
        if name == "event":
            selected = _selected(tokens, index)
            if selected is None:  # indexed, sized, a macro such as event.exists(...)
                attributes = None
                fields = None
                continue
            if attributes is not None:
                attributes.add(selected)
            if selected != "data":
                continue
            index += 2  # event.data is read like the variable data
        field = _selected(tokens, index)
        if field is None:
            fields = None
        elif fields is not None:
            fields.add(field)
    used = {name for _, name in uses}
    return Usage(
        event="event" in used,
        attributes=None if attributes is None else frozenset(attributes),
        data="data" in used,
        data_fields=None if fields is None else frozenset(fields),
    )


def _selected(tokens: list[_Token], index: int) -> str | None:
    """The field name in ``<tokens[index]>.name``, unless it is a method call; else None."""
    after = tokens[index + 1 : index + 4]
    if len(after) < 2 or after[0].text != "." or after[1].kind != "name":
        return None
    if len(after) == 3 and after[2].text == "(":
        return None
    return after[1].text


def _check_functions(expression: str, functions: list[str], tokens: list[_Token]) -> None:
    """Operators (``_&&_``, ``!_``, ``@in``) are the engine's; a named function must be known."""
    unknown = sorted(f for f in functions if f[:1].isalpha() and f not in FUNCTIONS)
    if not unknown:
        return
    message = (
        f"filter {quote(expression)} calls unknown function(s) {shorten(', '.join(unknown), 300)}"
    )
    calls = itertools.pairwise(tokens)
    column = next((t.column for t, nxt in calls if t.text == unknown[0] and nxt.text == "("), None)
    raise ExpressionError(
        _with_caret(message, expression, column)
        + f"\nfunctions available: {', '.join(sorted(FUNCTIONS))}, and the macros has, all, "
        "exists, exists_one, map, filter"
    )


def _with_caret(message: str, expression: str, column: int | None) -> str:
    if column is None:
        return message
    shown = show_position(expression.replace(chr(10), " "), column)
    return f"{message} at column {column}\n{shown}"


def _check_variables(expression: str, variables: set[str], tokens: list[_Token]) -> None:
    own = set(_COMPREHENSION.findall(expression))
    unknown = sorted(variables - set(VARIABLES) - own)
    if not unknown:
        return
    allowed = "; ".join(f"'{name}', {meaning}" for name, meaning in VARIABLES.items())
    listed = shorten(", ".join(repr(n) for n in unknown), 300)
    message = f"filter {quote(expression)} uses unknown variable(s) {listed}"
    column = next((t.column for _, t in _variable_uses(tokens) if t.text == unknown[0]), None)
    raise ExpressionError(
        f"{_with_caret(message, expression, column)}\na filter can use: {allowed}"
    )
