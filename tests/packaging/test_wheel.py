"""The container image, as far as it can be checked without Docker (there is none here).

- The Dockerfile, read statically: two stages on a slim Python, a non-root user, ``fnevents``
  as the entrypoint, the ops port exposed, no pip cache, a build context that lets in what
  the builder copies.
- The builder stage, run for real: its ``COPY`` lines are applied to a temporary context and
  its ``pip wheel`` command (read from the Dockerfile, so the two cannot drift) builds the
  wheel. The wheel must hold every package of the checkout.
- The final stage, as near as we can: that wheel is installed with its dependencies into a
  fresh venv (``python -m venv``, no system site-packages, from the package index pip is
  configured with, as ``pip install`` in the image does), and the image's ``CMD`` runs from
  it on a copy of examples/quickstart, with a working directory outside the checkout so the
  checkout cannot be imported: it says it is running, ``/readyz`` answers 200, the example's
  trigger delivers to its function, and SIGTERM stops it with status 0.

Not checked here: the base image, Debian's ``useradd``, BuildKit's ``--mount``, and the
image's own Python (3.12; the venv uses the interpreter running the tests).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from events.cli.main import DEFAULT_PORT
from tests.e2e.processes import finish, read_until

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: top-level folders that are deliberately not part of the distribution
NOT_SHIPPED = {"tests", "bench"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 for the first FROM's stage
    name: str  # upper case: FROM, RUN, COPY, ...
    args: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending.strip())
        pending = ""
    out, stage = [], -1
    for line in logical:
        name, _, args = line.partition(" ")
        if name.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, name.upper(), args.strip()))
    return out


DOCKER = instructions(DOCKERFILE.read_text())
FINAL = max(i.stage for i in DOCKER)


def only(name: str, stage: int = FINAL) -> Instruction:
    found = [i for i in DOCKER if i.name == name and i.stage == stage]
    assert len(found) == 1, f"stage {stage} has {len(found)} {name} instructions"
    return found[0]


def builder_wheel_command() -> list[str]:
    """The builder stage's ``pip wheel`` command, as argv."""
    runs = [i for i in DOCKER if i.stage == 0 and i.name == "RUN" and "pip wheel" in i.args]
    assert len(runs) == 1, "the builder stage must have one RUN ... pip wheel"
    return shlex.split(runs[0].args)


# --- the Dockerfile, statically ------------------------------------------------------------


def test_two_stages_on_slim_python() -> None:
    froms = [i.args for i in DOCKER if i.name == "FROM"]
    assert froms == ["python:3.12-slim AS builder", "python:3.12-slim"]
    # RUN --mount (the wheel never becomes a layer) needs BuildKit's Dockerfile syntax
    assert DOCKERFILE.read_text().startswith("# syntax=docker/dockerfile:1\n")


def test_the_image_runs_fnevents_as_a_non_root_user() -> None:
    user = only("USER").args.split(":")[0]
    assert user.isdigit() and int(user) == 10001, "USER must be numeric (runAsNonRoot)"
    setup = " ".join(i.args for i in DOCKER if i.stage == FINAL and i.name == "RUN")
    assert "useradd --uid 10001" in setup
    assert json.loads(only("ENTRYPOINT").args) == ["fnevents"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "fnevents" in scripts


def test_the_image_exposes_the_default_ops_port_on_every_address() -> None:
    assert only("EXPOSE").args == str(DEFAULT_PORT)
    command = json.loads(only("CMD").args)
    assert command[:3] == ["run", "-f", "/etc/fnevents/manifests"]
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_no_pip_cache_is_kept_in_any_layer() -> None:
    for step in DOCKER:
        if step.name == "RUN" and re.search(r"pip (install|wheel)", step.args):
            assert "--no-cache-dir" in step.args, step.args
    assert "PIP_NO_CACHE_DIR=1" in only("ENV").args


def test_the_build_context_lets_in_what_the_builder_copies() -> None:
    rules = [line for line in DOCKERIGNORE.read_text().splitlines() if line[:1] not in "#"]
    assert rules[0] == "*", ".dockerignore starts by excluding everything (an allow-list)"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for source, _ in builder_copies():
        assert source.rstrip("/") in allowed, f"{source} is copied but .dockerignore drops it"


def builder_copies() -> list[tuple[str, str]]:
    """(source, destination) of each file or folder the builder stage copies."""
    pairs = []
    for step in DOCKER:
        if step.stage == 0 and step.name == "COPY":
            *sources, dest = shlex.split(step.args)
            assert not any(s.startswith("--") for s in sources), step.args
            pairs += [(source, dest) for source in sources]
    return pairs


# --- the builder stage, for real -----------------------------------------------------------


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage's working directory: its COPY lines applied to an empty folder."""
    context = tmp_path_factory.mktemp("context")
    for source, dest in builder_copies():
        if (ROOT / source).is_dir():  # COPY dir/ dest/ copies the folder's contents
            shutil.copytree(ROOT / source, context / dest, ignore=IGNORED)
        else:  # COPY file... dir/
            (context / dest).mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, context / dest / Path(source).name)
    return context


@pytest.fixture(scope="module")
def wheel(context: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage's wheel: its ``pip wheel`` command run in its context."""
    command = builder_wheel_command()
    assert command[:2] == ["python", "-m"], "the builder runs pip as python -m pip"
    out = tmp_path_factory.mktemp("wheels")
    command[0] = sys.executable
    command[command.index("--wheel-dir") + 1] = str(out)
    subprocess.run(command, cwd=context, check=True, capture_output=True, timeout=120)
    (built,) = out.glob("fnevents-*.whl")
    return built


def packages(folder: Path) -> set[str]:
    """The top-level Python packages in ``folder`` that are meant to ship."""
    return {
        top.name
        for top in folder.iterdir()
        if (top / "__init__.py").is_file() and top.name not in NOT_SHIPPED
    }


def package_files(folder: Path) -> set[str]:
    """Every file of ``folder``'s packages, as its path in a wheel."""
    return {
        path.relative_to(folder).as_posix()
        for top in packages(folder)
        for path in (folder / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_builder_copies_every_package_of_the_checkout(context: Path) -> None:
    assert packages(ROOT) == packages(context) == {"events", "sources", "triggers"}


def test_the_wheel_holds_every_package_and_file_it_was_built_from(
    wheel: Path, context: Path
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(package_files(context) - names)
    assert not missing, f"not in the wheel (pyproject's [tool.setuptools]): {missing}"
    assert "events/cli/main.py" in names


def test_the_wheel_runs_the_image_command_from_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=60)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    install = [python, "-m", "pip", "install", "--no-cache-dir", "--quiet", wheel]
    subprocess.run(install, check=True, env=env, cwd=tmp_path, timeout=180)
    where = subprocess.run(
        [python, "-c", "import events; print(events.__file__)"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(venv), where

    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "examples" / "quickstart", manifests, ignore=IGNORED)
    command = json.loads(only("CMD").args)
    command[command.index("/etc/fnevents/manifests")] = str(manifests)
    process = subprocess.Popen(
        [venv / "bin" / "fnevents", *command, "--port", "0"],
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        said = "\n".join(read_until(process, r"^running; ", timeout=60))
        ops = re.search(r"health and metrics on (http://\S+)/metrics", said)
        assert ops, said
        assert ready(ops.group(1).replace("0.0.0.0", "127.0.0.1")), said
        # the cron source fires each second: a delivery proves the whole path works
        read_until(process, r"delivered .*hello-trigger", timeout=20)
    finally:
        rest = finish(process)
    assert process.returncode == 0, rest


def ready(ops: str, timeout: float = 20.0) -> bool:
    """Whether ``/readyz`` answers 200 within ``timeout`` (503 while still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{ops}/readyz", timeout=5) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError:
            pass
        time.sleep(0.1)
    return False
