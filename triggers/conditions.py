"""OpenFunction trigger conditions: CEL over one boolean per input name.

An input is *fresh* while it has had an event within the trigger's window
(60 s by default). When an event arrives on an input, that input becomes fresh
and every subscriber's condition is evaluated over the freshness of all inputs;
each subscriber whose condition is true receives the event that just arrived.

Conditions are compiled when manifests load. Since their variables are only
booleans, a condition over up to ``TABLE_LIMIT`` inputs is turned into a truth
table at compile time, so evaluating it on the hot path is one list lookup.
A condition may use its inputs, ``true`` and ``false``, and the operators ``&&``,
``||``, ``!``, ``==``, ``!=`` and ``? :``: nothing else means anything over booleans,
and nothing else can make the truth table slow to build (a comprehension such as
``[1, 2, 3].all(tick, ...)`` nested a few times, or a regular expression, would run
thousands of times at load).

A CEL expression (a condition or a filter's ``cel``) is at most
``MAX_EXPRESSION_LENGTH`` characters: the library's parse-error path costs time and
memory that grow with the square of the length (20,000 characters of a character it
does not expect take 1.6 GB), so longer text is refused before it is parsed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from events.errors import ExpressionError, quote, shorten
from triggers import celcore as cel

TABLE_LIMIT = 12
#: The longest CEL expression compiled; the library parses one this long in milliseconds
#: even at its worst (tens of milliseconds and tens of MB for 2,048 characters it rejects).
MAX_EXPRESSION_LENGTH = 2048
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
#: What a condition may apply to its booleans (the library's names for the operators).
_CONDITION_OPERATORS = {
    "_&&_": "&&",
    "_||_": "||",
    "!_": "!",
    "_==_": "==",
    "_!=_": "!=",
    "_?_:_": "? :",
}
#: Characters of an expression shown either side of a position in an error message.
_WINDOW = 60


#: A CEL lexeme: blanks, a comment, a string or bytes literal, && or ||, or a run of the
#: other characters CEL has (names, numbers, operators, brackets).
_LEXEME = re.compile(
    r"[ \t\r\n\f]+|//[^\n]*"
    r"""|[rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
    r"|&&|\|\||[A-Za-z0-9_.+\-*/%!<>=?:,()\[\]{}]+",
    re.DOTALL,
)


def compile_cel(expression: str, what: str) -> cel.Program:
    """Compile CEL, turning the library's error into one that shows the position.

    An expression longer than MAX_EXPRESSION_LENGTH, or with a character CEL has no use
    for outside a string (the library reports each such character with the whole line,
    which is what makes its error path quadratic), is refused without calling the
    library. Compiled programs (and errors) are remembered by text, so one expression
    repeated by YAML aliases over thousands of subscribers is compiled once."""
    compiled = _compile(expression, what)
    if isinstance(compiled, str):
        raise ExpressionError(compiled)
    return compiled


@functools.lru_cache(maxsize=1024)
def _compile(expression: str, what: str) -> cel.Program | str:
    """The program, or the error message."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return (
            f"{what} {quote(expression)} is {len(expression)} characters long; at most "
            f"{MAX_EXPRESSION_LENGTH} are allowed"
        )
    position = 0
    while position < len(expression):
        lexeme = _LEXEME.match(expression, position)
        if lexeme is None:
            break
        position = lexeme.end()
    if position < len(expression) and expression[position] not in "'\"":
        return _stray_character(expression, position, what)
    try:
        return cel.compile(expression)
    except ValueError as exc:
        return _explain(expression, str(exc), what)


def _stray_character(expression: str, position: int, what: str) -> str:
    character = expression[position]
    hint = f" (did you mean '{character * 2}'?)" if character in "&|" else ""
    start = expression.rfind("\n", 0, position) + 1
    end = expression.find("\n", position)
    line = expression[start : end if end >= 0 else len(expression)]
    column = position - start + 1
    return (
        f"{what} {quote(expression)} does not compile at column {column}: "
        f"{quote(character)} cannot appear outside a string{hint}\n" + show_position(line, column)
    )


def _explain(expression: str, message: str, what: str) -> str:
    match = _CEL_POSITION.search(message)
    if not match:
        return f"{what} {quote(expression)} does not compile: {shorten(message, 300)}"
    line, column, problem = int(match[1]), int(match[2]), shorten(match[3].strip(), 200)
    lines = expression.splitlines()
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    return (
        f"{what} {quote(expression)} does not compile at column {column}: {problem}\n"
        + show_position(source_line, column)
    )


def show_position(line: str, column: int) -> str:
    """Two indented lines: ``line`` (a window of it around ``column`` if it is long; a
    character that cannot be printed as ``?``) and a caret under the 1-based ``column``."""
    start = max(0, column - 1 - _WINDOW)
    end = column - 1 + _WINDOW
    shown = "".join(c if c.isprintable() else "?" for c in line[start:end])
    before = "..." if start else ""
    after = "..." if end < len(line) else ""
    caret = " " * (len(before) + column - 1 - start) + "^"
    return f"    {before}{shown}{after}\n    {caret}"


class Condition:
    """A compiled condition over the freshness of a trigger's inputs.

    Only booleans ever meet: the inputs, ``true`` and ``false``, combined by the operators
    a condition may use. So every assignment of the inputs gives true or false -- nothing
    needs evaluating at load -- and each row of the truth table is computed the first time
    an event needs it, then remembered (for up to ``TABLE_LIMIT`` inputs).
    """

    __slots__ = ("_inputs", "_program", "_rows", "expression")

    def __init__(self, expression: str, inputs: Sequence[str]) -> None:
        self.expression = expression
        self._inputs = tuple(inputs)
        checked = _checked(expression, self._inputs)
        if isinstance(checked, str):
            raise ExpressionError(checked)
        self._program = checked
        self._rows: dict[int, bool] | None = {} if len(inputs) <= TABLE_LIMIT else None
        self.evaluate({})  # cannot fail now; a last check that the library agrees

    def evaluate(self, fresh: Mapping[str, bool]) -> bool:
        """Whether the condition holds, given which inputs are fresh."""
        rows = self._rows
        if rows is None:
            return self._run({name: bool(fresh.get(name)) for name in self._inputs})
        index = 0
        for bit, name in enumerate(self._inputs):
            if fresh.get(name):
                index |= 1 << bit
        result = rows.get(index)
        if result is None:
            assignment = {name: bool(index >> bit & 1) for bit, name in enumerate(self._inputs)}
            result = rows[index] = self._run(assignment)
        return result

    def _run(self, assignment: dict[str, bool]) -> bool:
        try:
            result = self._program.execute(assignment)
        except (RuntimeError, TypeError, ValueError, KeyError) as exc:
            raise ExpressionError(
                f"condition {quote(self.expression)} cannot be evaluated over boolean "
                f"inputs: {shorten(str(exc), 300)}"
            ) from None
        if not isinstance(result, bool):
            raise ExpressionError(
                f"condition {quote(self.expression)} must be true or false, but gives "
                f"{type(result).__name__} {quote(result)}; combine inputs with &&, || and !"
            )
        return result


@functools.lru_cache(maxsize=1024)
def _checked(expression: str, inputs: tuple[str, ...]) -> cel.Program | str:
    """The program of a condition over ``inputs``, or the error message; remembered, so
    one condition repeated by YAML aliases over thousands of subscribers is checked once."""
    try:
        program = compile_cel(expression, "condition")
    except ExpressionError as exc:
        return str(exc)
    unknown = sorted(set(program.variables()) - set(inputs))
    if unknown:
        return (
            f"condition {quote(expression)} refers to unknown input(s) "
            f"{shorten(', '.join(unknown), 300)}; this trigger's inputs are: "
            f"{shorten(', '.join(inputs), 300)}"
        )
    other = sorted(set(program.functions()) - set(_CONDITION_OPERATORS))
    if other:
        return (
            f"condition {quote(expression)} cannot be evaluated over boolean inputs: it "
            f"uses {shorten(', '.join(_operator(f) for f in other), 300)}; {_GRAMMAR}"
        )
    try:
        _only_booleans(expression)
    except ExpressionError as exc:
        return str(exc)
    return program


_GRAMMAR = "a condition combines its inputs with &&, ||, !, ==, != and ? : (and true, false)"
#: What a condition is made of once it compiles with only the allowed operators.
_BOOLEAN_PART = re.compile(r"\s+|&&|\|\||==|!=|[!?:()]|\b(?:true|false)\b|[A-Za-z_]\w*")
_ANY_PART = re.compile(r"\d[\w.+-]*|[rRbB]*'[^'\n]*'?|[rRbB]*\"[^\"\n]*\"?|\w+|\S")


def _only_booleans(expression: str) -> None:
    """Raise ExpressionError for a part that is not a boolean (a number, a string, null,
    a list, a field...): the operators allowed keep booleans boolean, and nothing else."""
    position = 0
    while position < len(expression):
        found = _BOOLEAN_PART.match(expression, position)
        if found is None or found[0] == "null":
            break
        position = found.end()
    else:
        return
    part = _ANY_PART.match(expression, position)
    text = part[0] if part else expression[position]
    line = expression.count("\n", 0, position)
    start = expression.rfind("\n", 0, position) + 1
    column = position - start + 1
    raise ExpressionError(
        f"condition {quote(expression)} must be true or false, and so must every part of "
        f"it, but at column {column} it has {quote(text, 40)}; {_GRAMMAR}\n"
        + show_position(expression.splitlines()[line] if expression else "", column)
    )


def _operator(function: str) -> str:
    """How a user wrote what the library calls ``function``."""
    if function == "@not_strictly_false":
        return "a comprehension (all, exists, ...)"
    if function == "@in":
        return "'in'"
    name = function.strip("_").replace("_", " ").strip()
    return f"'{name}'" if function.startswith(("_", "!", "-")) else f"{function}()"
