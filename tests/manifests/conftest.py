from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML documents into one file; returns its path."""

    def _write(*documents: str, name: str = "manifests.yaml") -> Path:
        path = tmp_path / name
        path.write_text("---\n".join(textwrap.dedent(d) for d in documents))
        return path

    return _write
