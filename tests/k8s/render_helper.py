"""Running ``fnevents render`` in this process, for the k8s tests.

Through ``events.cli.main`` once it has the ``render`` command, else through the command
module on a parser of its own (the same ``add_parser``/``run`` the CLI wires in).
"""

from __future__ import annotations

import argparse
import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.app.render.command import add_parser, run
from tests.k8s.validate import load_docs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("quickstart", "vehicle-telemetry", "function-chain")
BUSES = ("redis", "kafka", "jetstream", "mqtt")


@dataclass(frozen=True)
class Rendered:
    status: int
    out: str
    err: str

    @property
    def objects(self) -> list[dict[str, Any]]:
        assert self.status == 0, self.err
        return load_docs(self.out)

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}


def render(*args: str | Path) -> Rendered:
    """``fnevents render ARGS`` (paths relative to the repository root)."""
    parser = argparse.ArgumentParser(prog="fnevents")
    add_parser(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["render", *map(str, args)])
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(ROOT),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        status = run(parsed)
    return Rendered(status, out.getvalue(), err.getvalue())


def example(name: str, bus: str, *extra: str) -> Rendered:
    return render("-f", f"examples/{name}", "--components", f"components/{bus}.yaml", *extra)
