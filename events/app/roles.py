"""Which roles one ``fnevents run`` process runs: everything, or what ``--only`` names.

All roles run in one process by default. For scaling out, ``--only ROLE`` (repeatable)
runs just the named ones, each process reading the same manifests:

- ``function/NAME``: a Function (sync: its HTTP server; async: its topic consumer);
- ``trigger/NAME``: a Trigger;
- ``source/NAME``: an EventSource, with all of its events.

``KIND/NAMESPACE/NAME`` picks one namespace; ``KIND/NAME`` matches the name in
every namespace. A role that names nothing in the manifests is an error that
lists what there is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from events.app.catalog import Catalog
from events.errors import FnEventsError
from events.manifests.loader import Loaded

ROLE_KINDS = {"function": "Function", "trigger": "Trigger", "source": "EventSource"}
_ROLE_OF_KIND = {kind: role for role, kind in ROLE_KINDS.items()}


class RoleError(FnEventsError, ValueError):
    """``--only`` names a role that is malformed or not in the manifests."""


@dataclass(frozen=True)
class Roles:
    """A selection of resources to run; ``None`` patterns mean every role."""

    patterns: frozenset[tuple[str, str | None, str]] | None = None

    @classmethod
    def parse(cls, specs: Sequence[str], catalog: Catalog) -> Roles:
        """Roles from ``--only`` values; raises RoleError naming the bad one and the choices."""
        if not specs:
            return cls()
        patterns = frozenset(_pattern(spec) for spec in specs)
        roles = cls(patterns)
        available = [item for kind in ROLE_KINDS.values() for item in catalog.of_kind(kind)]
        for spec, pattern in zip(specs, map(_pattern, specs), strict=True):
            if not any(_matches(pattern, item) for item in available):
                raise RoleError(
                    f"--only {spec}: no {ROLE_KINDS[pattern[0]]} of that name in the manifests; "
                    f"roles there: {', '.join(describe_roles(available)) or 'none'}"
                )
        return roles

    @property
    def everything(self) -> bool:
        return self.patterns is None

    def __contains__(self, item: Loaded) -> bool:
        if self.patterns is None:
            return True
        return any(_matches(pattern, item) for pattern in self.patterns)


def describe_roles(items: Iterable[Loaded]) -> list[str]:
    return sorted(f"{_ROLE_OF_KIND[i.kind]}/{i.namespace}/{i.name}" for i in items)


def _pattern(spec: str) -> tuple[str, str | None, str]:
    parts = spec.split("/")
    if len(parts) not in (2, 3) or parts[0] not in ROLE_KINDS or not all(parts):
        raise RoleError(
            f"--only {spec!r}: expected function/NAME, trigger/NAME or source/NAME "
            "(or KIND/NAMESPACE/NAME)"
        )
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], parts[1], parts[2]


def _matches(pattern: tuple[str, str | None, str], item: Loaded) -> bool:
    role, namespace, name = pattern
    return (
        ROLE_KINDS[role] == item.kind
        and name == item.name
        and (namespace is None or namespace == item.namespace)
    )
