"""Names a manifest gives that must be identifiers in CEL: a Trigger's input names,
which its conditions refer to as variables."""

from __future__ import annotations

import re

from events.errors import quote

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CEL_RESERVED = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)


def check_input_name(name: str) -> None:
    """Raise ValueError unless ``name`` can be a CEL variable."""
    if not _IDENTIFIER.fullmatch(name):
        fixed = re.sub(r"\W", "_", name)
        if fixed[:1].isdigit():
            fixed = f"_{fixed}"
        raise ValueError(
            f"input name {quote(name)} is not an identifier, so a condition cannot refer to it "
            f"('-' would parse as subtraction); use letters, digits and '_', e.g. {quote(fixed)}"
        )
    if name in _CEL_RESERVED:
        raise ValueError(f"input name {quote(name)} is a reserved word in CEL; choose another name")
