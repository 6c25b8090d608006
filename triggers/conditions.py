"""OpenFunction trigger conditions: CEL over one boolean per input name.

An input is *fresh* while it has had an event within the trigger's window
(60 s by default). When an event arrives on an input, that input becomes fresh
and every subscriber's condition is evaluated over the freshness of all inputs;
each subscriber whose condition is true receives the event that just arrived.

Conditions are compiled when manifests load. Since their variables are only
booleans, a condition over up to ``TABLE_LIMIT`` inputs is turned into a truth
table at compile time, so evaluating it on the hot path is one list lookup.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from events.errors import ExpressionError
from triggers import celcore as cel

TABLE_LIMIT = 12
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def compile_cel(expression: str, what: str) -> cel.Program:
    """Compile CEL, turning the library's error into one that shows the position."""
    try:
        return cel.compile(expression)
    except ValueError as exc:
        raise ExpressionError(_explain(expression, str(exc), what)) from None


def _explain(expression: str, message: str, what: str) -> str:
    match = _CEL_POSITION.search(message)
    if not match:
        return f"{what} {expression!r} does not compile: {message}"
    line, column, problem = int(match[1]), int(match[2]), match[3].strip()
    source_line = expression.splitlines()[line - 1] if expression else ""
    caret = " " * (column - 1) + "^"  # CEL columns are 1-based
    return (
        f"{what} {expression!r} does not compile at column {column}: {problem}\n"
        f"    {source_line}\n    {caret}"
    )


class Condition:
    """A compiled condition over the freshness of a trigger's inputs."""

    __slots__ = ("_inputs", "_program", "_table", "expression")

    def __init__(self, expression: str, inputs: Sequence[str]) -> None:
        self.expression = expression
        self._program = compile_cel(expression, "condition")
        unknown = sorted(set(self._program.variables()) - set(inputs))
        if unknown:
            raise ExpressionError(
                f"condition {expression!r} refers to unknown input(s) {', '.join(unknown)}; "
                f"this trigger's inputs are: {', '.join(inputs)}"
            )
        self._inputs = tuple(inputs)
        self._table = self._truth_table() if len(inputs) <= TABLE_LIMIT else None

    def evaluate(self, fresh: Mapping[str, bool]) -> bool:
        """Whether the condition holds, given which inputs are fresh."""
        if self._table is not None:
            index = 0
            for bit, name in enumerate(self._inputs):
                if fresh.get(name):
                    index |= 1 << bit
            return self._table[index]
        return self._run({name: bool(fresh.get(name)) for name in self._inputs})

    def _truth_table(self) -> list[bool]:
        table = []
        for bits in itertools.product((False, True), repeat=len(self._inputs)):
            # product() counts with the last input fastest; reverse so input i is bit i.
            assignment = dict(zip(self._inputs, reversed(bits), strict=True))
            table.append(self._run(assignment))
        return table

    def _run(self, assignment: dict[str, bool]) -> bool:
        try:
            result = self._program.execute(assignment)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ExpressionError(
                f"condition {self.expression!r} cannot be evaluated over boolean inputs: {exc}"
            ) from None
        if not isinstance(result, bool):
            raise ExpressionError(
                f"condition {self.expression!r} must be true or false, but gives "
                f"{type(result).__name__} {result!r}; combine inputs with &&, || and !"
            )
        return result
