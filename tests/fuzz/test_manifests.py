"""Fuzzing manifest loading: mutated manifests into ``load_catalog`` and ``fnevents validate``.

The inputs start from the valid manifests in ``examples/``, ``components/``,
``tests/fixtures/openfunction/`` and the builders in ``tests/manifests/documents.py``, and
are mutated as YAML text (values replaced by hostile ones, lines dropped, duplicated or
re-indented, text spliced in, deep nesting, alias bombs) and as decoded trees (types
swapped, huge numbers, unicode edge cases, shared and recursive values that YAML writes as
anchors and aliases, missing and extra fields); CEL conditions and filters are generated
from CEL's own pieces.

For every input:

- ``load_catalog`` returns a catalog or raises ManifestErrors, nothing else, within
  ``TIME_BUDGET`` CPU seconds;
- every error message names the file and is at most ``MESSAGE_LIMIT`` characters;
- what is accepted can be printed: every line ``validate`` would print encodes as UTF-8;
- ``fnevents validate -f FILE`` (in process, output into strict UTF-8 streams) exits 0
  for an accepted input and 1 with one ``error:`` line per error otherwise, never a
  traceback, within ``MEMORY_BUDGET`` bytes of Python allocations.

Budgets: a valid example takes about 10 ms of CPU and 2 MB of allocations to load and
validate; the budgets are far above that (and above the largest input generated here),
so only a hang or a blow-up trips them.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from events.app.load import load_catalog
from events.app.report import describe_catalog
from events.cli.main import main
from events.errors import ManifestErrors
from events.manifests import yaml_reader
from tests.fuzz.budget import EXAMPLES, FUZZ, TEST_TIMEOUT, cpu_budget
from tests.manifests import documents

ROOT = Path(__file__).parent.parent.parent
#: CPU seconds one input may take to load and check (a valid example takes ~10 ms).
TIME_BUDGET = 2.0
#: Python allocations one ``validate`` may peak at (a valid example takes ~2 MB).
MEMORY_BUDGET = 64 * 1024 * 1024
#: The longest error message (the file's path included; ours are short).
MESSAGE_LIMIT = 2000


def _seeds() -> list[str]:
    """Valid manifest sets, each as one multi-document YAML text."""
    sets = []
    for directory in [*sorted((ROOT / "examples").iterdir()), ROOT / "tests/fixtures/openfunction"]:
        files = sorted(directory.glob("*.yaml"))
        if files:
            sets.append("\n---\n".join(f.read_text() for f in files))
    sets += [f.read_text() for f in sorted((ROOT / "components").glob("*.yaml"))]
    filtered = documents.trigger(
        "tick && !tock || tick == tock",
        "tick: {eventSource: clock, event: tick, filter: {prefix: {type: com.}}}\n"
        "    tock: {eventSource: clock, event: tock}",
        "    filter: {cel: 'data.speed > 80 && event.type.startsWith(\"x\")'}\n"
        "    delivery: {retry: 2, backoffDelay: 500ms, timeout: PT5S}\n"
        "  conditionWindow: 1m30s\n",
    )
    sets += [
        documents.BUS
        + "---\n"
        + documents.CRON_SOURCE.replace("@every 1s", "0 */5 * * * *")
        + "    tock: {schedule: '@every 1s'}\n---\n"
        + filtered,
        documents.EMBEDDED_BUS + documents.hourly_trigger("t", "http://127.0.0.1:9/"),
        documents.bus(
            "pubsub.redis", redisHost="localhost:6379", processingTimeout="60s", redisDB=3
        )
        + documents.eventsource(
            "devices",
            "mqtt",
            {"m": {"url": "tcp://localhost:1883", "topic": "t/#", "qos": 1}},
        )
        + documents.eventsource("web", "http", {"h": {"port": 8080, "path": "/in"}}),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: auth}\n"
        "data: {password: aHVudGVyMg==}\nstringData: {user: me}\n---\n"
        + documents.bus("pubsub.redis", redisHost="localhost:6379").replace(
            "\n---\napiVersion: events",
            "\n    - {name: redisPassword, secretKeyRef: {name: auth, key: password}}\n"
            "---\napiVersion: events",
            1,
        ),
    ]
    return sets


SEEDS = _seeds()


# What the mutations put in: values that have broken loaders before, and random ones.

HOSTILE_SCALARS = [
    "2024-02-30",
    "2024-13-01T25:61:00Z",
    "!!bool maybe",
    "!!int abc",
    "!!int ''",
    "!!float ''",
    "!!float abc",
    "!!timestamp nope",
    "!!binary YQ",
    "!!binary '!!!'",
    "!!set {a, b}",
    "!!omap [{a: 1}, {b: 2}]",
    "!!pairs [{a: 1}]",
    "!!python/object:os.system x",
    "!!python/name:os.system",
    "!unknown x",
    "!!str",
    "!!null x",
    "!!map [1]",
    "!!seq {a: 1}",
    "9" * 401,
    "9" * 4301,
    "9" * 4400,
    "-" + "9" * 400,
    "0x" + "f" * 5000,
    "0b2",
    "0o9",
    "0x",
    "1_000",
    "12:30:45",
    "190:20:30",
    "1e999",
    "'1e999'",
    "-1e999",
    ".inf",
    "-.inf",
    ".nan",
    "'inf'",
    "'nan'",
    "2562047h",
    "2562048h",
    "'" + "1" * 30 + "h'",
    "-5s",
    "0",
    "-1",
    "PT1M",
    "P99999999999999999999D",
    "'@every 87600000h'",
    "'@every 2562047h'",
    "'@every 1ns'",
    "'0 25 * * *'",
    "'CRON_TZ=Nope/Zone * * * * *'",
    "'0 0 30 2 *'",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\U0001F600"',
    '"\\x00"',
    '"\\e\\a\\b"',
    '"\\N\\_\\L\\P"',
    '"\\U00110000"',
    "'\u202e\u200b\ufeff'",
    "é" * 3000,
    "'" + "é" * 3000 + "'",
    "'" + "x" * 100_000 + "'",
    "'" + "\U0001f600" * 1000 + "'",
    "~",
    "null",
    "''",
    "[]",
    "{}",
    "[[], {}]",
    "{a: {b: {c: [d]}}}",
    "{[a]: b}",
    "{{a: 1}: b}",
    "{? [a, b] : c}",
    "&x a",
    "*nope",
    "&a [*a]",
    "&m {k: *m}",
    "{<<: *nope}",
    "{<<: [1, 2]}",
    "{<<: {a: 1}, a: 2}",
    "yes",
    "no",
    "on",
    "True",
    "FALSE",
    "|\n  block",
    ">-",
    "`",
    "@",
    "%",
    "'unterminated",
    '"unterminated',
    "{unclosed: 1",
    "[unclosed",
    "a: b: c",
    "- a",
    "? a",
    "--- a",
    "... a",
]
CEL_PIECES = [
    "tick", "tock", "event", "data", "event.type", "data.speed", "event.data.gps.lat", "x",
    "true", "false", "null", "1", "1.5", "-1", "1u", "'s'", '"s"', "b'\\x01'", "r'a\\b'",
    "'é'", "'\\ud800'", "'\\U0001F600'", "é", "\U0001f600",
    "&&", "||", "!", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "?", ":",
    "in", "(", ")", "[", "]", "{", "}", ",", ".",
    "size(", "has(", "matches(", "startsWith(", "int(", "string(", "timestamp(", "dyn(",
    ".all(x, ", ".exists(x, ", ".exists_one(x, ", ".map(x, ", ".filter(x, ",
    "'(a+)+$'", "[1, 2, 3]", "{'a': 1}", "\n", " ", "\\", "'", '"', "#", "@", "$",
]  # fmt: skip


def scalar_text() -> st.SearchStrategy[str]:
    """A YAML scalar (or small flow collection) as text."""
    return st.one_of(
        st.sampled_from(HOSTILE_SCALARS),
        st.integers().map(str),
        st.builds(lambda digits: str(7 * 10**digits), st.integers(300, 1000)),
        st.floats().map(repr),
        st.text(max_size=40).map(json.dumps),  # \uXXXX escapes, surrogates too
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40
        ),  # plain, maybe not even a scalar
        st.builds(lambda n: "[" * n + "]" * n, st.integers(1, 1200)),
        st.builds(lambda n: "{a: " * n + "1" + "}" * n, st.integers(1, 300)),
    )


def cel_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(st.sampled_from(CEL_PIECES), max_size=30).map(" ".join),
        st.lists(st.sampled_from(CEL_PIECES), max_size=30).map("".join),
        st.builds(lambda p, n: p * n, st.sampled_from(CEL_PIECES), st.integers(1, 3000)),
        st.text(max_size=60),
    )


def alias_bomb(levels: int, width: int) -> str:
    lines = ['  b0: &b0 ["lol"]'] + [
        f"  b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * width)}]" for i in range(1, levels + 1)
    ]
    return "bomb:\n" + "\n".join(lines) + f"\nbombed: *b{levels}"


# Mutations of the YAML text, line by line.

Mutation = Callable[[list[str]], list[str]]


def _value_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if ": " in line or line.rstrip().endswith(":")]


def replace_value(pick: int, value: str) -> Mutation:
    def mutate(lines: list[str]) -> list[str]:
        found = _value_lines(lines)
        if not found:
            return lines
        index = found[pick % len(found)]
        key = lines[index].split(":", 1)[0]
        return [*lines[:index], f"{key}: {value}", *lines[index + 1 :]]

    return mutate


def replace_expression(pick: int, value: str, which: str = "") -> Mutation:
    """Put ``value`` (JSON-quoted, so any text fits) in a condition or a cel filter (or in
    the one ``which`` names, adding a filter to the first subscriber if there is none)."""

    def mutate(lines: list[str]) -> list[str]:
        names = [which] if which else ["condition", "cel"]
        found = [i for i, line in enumerate(lines) if any(f"{n}:" in line for n in names)]
        quoted = json.dumps(value)
        if not found and which == "cel":
            conditions = [i for i, line in enumerate(lines) if "condition:" in line]
            if not conditions:
                return lines
            index = conditions[0]
            indent = len(lines[index]) - len(lines[index].lstrip(" -"))
            added = f"{' ' * indent}filter: {{cel: {quoted}}}"
            return [*lines[: index + 1], added, *lines[index + 1 :]]
        if not found:
            return lines
        index = found[pick % len(found)]
        line = lines[index]
        if "{cel:" in line:
            changed = f"{line.split('{cel:', 1)[0]}{{cel: {quoted}}}"
        elif "cel:" in line:
            changed = f"{line.split('cel:', 1)[0]}cel: {quoted}"
        else:
            changed = f"{line.split('condition:', 1)[0]}condition: {quoted}"
        return [*lines[:index], changed, *lines[index + 1 :]]

    return mutate


def edit_line(pick: int, how: str, text: str) -> Mutation:
    def mutate(lines: list[str]) -> list[str]:
        if not lines:
            return [text]
        index = pick % len(lines)
        line = lines[index]
        changed = {
            "delete": [],
            "duplicate": [line, line],
            "indent": ["  " + line],
            "dedent": [line[2:] if line.startswith("  ") else line.lstrip()],
            "insert": [text, line],
            "append": [line + text],
            "separator": ["---", line],
            "truncate": [line[: len(line) // 2]],
        }[how]
        return [*lines[:index], *changed, *lines[index + 1 :]]

    return mutate


def splice(position: int, text: str) -> Mutation:
    def mutate(lines: list[str]) -> list[str]:
        whole = "\n".join(lines)
        at = position % (len(whole) + 1)
        return (whole[:at] + text + whole[at:]).split("\n")

    return mutate


def add_top_level(text: str) -> Mutation:
    """Add ``text`` at the top level of a random-ish document (after a separator or first)."""

    def mutate(lines: list[str]) -> list[str]:
        return [*text.split("\n"), *lines]

    return mutate


text_mutations = st.one_of(
    st.builds(replace_value, st.integers(0, 10**6), scalar_text()),
    st.builds(replace_expression, st.integers(0, 10**6), cel_text()),
    st.builds(
        edit_line,
        st.integers(0, 10**6),
        st.sampled_from(
            ["delete", "duplicate", "indent", "dedent", "insert", "append", "separator", "truncate"]
        ),
        st.one_of(scalar_text(), st.sampled_from(["x: 1", "spec:", "  - a", "---", "#", "  "])),
    ),
    st.builds(splice, st.integers(0, 10**6), st.text(max_size=20)),
    st.builds(
        add_top_level,
        st.one_of(
            st.builds(alias_bomb, st.integers(1, 12), st.integers(1, 12)),
            st.builds(lambda v: f"extra: {v}", scalar_text()),
        ),
    ),
)


# Mutations of the decoded tree.

leaf_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.builds(
        lambda digits, sign: sign * 10**digits, st.integers(300, 4000), st.sampled_from([1, -1])
    ),
    st.floats(),
    st.text(alphabet=st.characters(), max_size=50),  # surrogates included
    st.text(alphabet=string.printable, min_size=1000, max_size=5000),
    st.binary(max_size=30),
    st.dates(),
    st.datetimes(),
)
tree_values = st.recursive(
    leaf_values,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=10), st.integers(), st.booleans()), children, max_size=5
        ),
    ),
    max_leaves=20,
)


def _paths(value: Any, path: tuple = (), above: frozenset[int] = frozenset()) -> list[tuple]:
    """Every path into ``value``, not following a value back into itself."""
    found = [path]
    if id(value) in above or len(path) > 200:
        return found
    above = above | {id(value)}
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key), above)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index), above)
    return found


def _get(tree: Any, path: tuple) -> Any:
    for step in path:
        tree = tree[step]
    return tree


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated_tree(draw: st.DrawFn) -> str:
    docs = [d for d in yaml.safe_load_all(draw(st.sampled_from(SEEDS))) if d is not None]
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(docs)[1:]  # not the list of documents itself
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _get(docs, path[:-1]), path[-1]
        operation = draw(
            st.sampled_from(["replace", "delete", "extra", "wrap", "share", "recurse", "deep"])
        )
        if operation == "replace":
            parent[last] = draw(tree_values)
        elif operation == "delete":
            del parent[last]
        elif operation == "extra" and isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=12))] = draw(tree_values)
        elif operation == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"x": parent[last]}]))
        elif operation == "share":  # one value in two places: YAML writes an anchor and alias
            parent[last] = _get(docs, draw(st.sampled_from(paths)))
        elif operation == "recurse" and isinstance(parent[last], list | dict):
            value = parent[last]
            if isinstance(value, list):
                value.append(value)
            else:
                value["self"] = value
        elif operation == "deep":
            parent[last] = _nested(draw(st.integers(1, 150)))
    return yaml.safe_dump_all(
        docs,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, True, None])),
        sort_keys=False,
    )


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for mutate in draw(st.lists(text_mutations, min_size=1, max_size=4)):
        lines = mutate(lines)
    return "\n".join(lines)


# The properties.


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file each example is written to (its path is in every error message)."""
    path = tmp_path_factory.mktemp("fuzz") / "manifests.yaml"
    path.write_text(SEEDS[0])
    load_catalog([str(path)], [])  # imports and caches everything a first load needs
    return path


def _utf8_stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)


def _output(stream: io.TextIOWrapper) -> str:
    return stream.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]


def _kind(message: str, where: str) -> str:
    """What sort of error ``message`` is, for the run's statistics."""
    problem = message.removeprefix(where)
    if "malformed YAML" in problem:
        return "malformed YAML"
    if "field '" in problem:
        return "a field"
    return problem.split(":", 1)[0].strip(", ") or "other"


def check(path: Path, content: str | bytes) -> None:
    if isinstance(content, str):
        content = content.encode("utf-8", errors="surrogatepass")  # lone surrogates: not UTF-8
    path.write_bytes(content)
    where = str(path)

    with cpu_budget(TIME_BUDGET):
        try:
            catalog = load_catalog([where], [])
            errors: list[str] = []
        except ManifestErrors as exc:
            catalog, errors = None, [str(e) for e in exc.errors]
    assert (catalog is None) == bool(errors)
    event("accepted" if catalog is not None else f"refused: {_kind(errors[0], where)}")
    for message in errors:
        assert where in message, message
        assert len(message) <= MESSAGE_LIMIT, message[:300]
        message.encode("utf-8")
    if catalog is not None:
        for line in describe_catalog(catalog):
            line.encode("utf-8")  # everything accepted can be printed

    out, err = _utf8_stream(), _utf8_stream()
    with (
        cpu_budget(TIME_BUDGET * 5, traced=True) as spent,  # tracing makes it ~5x slower
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(["validate", "-f", where])
    assert spent.peak_bytes <= MEMORY_BUDGET, f"{spent.peak_bytes / 1e6:.0f} MB"
    printed, complaints = _output(out), _output(err)
    assert "Traceback" not in printed + complaints
    if catalog is not None:
        assert code == 0 and printed.rstrip().endswith("ok: no errors"), complaints
    else:
        assert code == 1
        lines = complaints.splitlines()
        assert lines[-1] == f"{len(errors)} error(s); nothing was started"
        assert sum(line.startswith(f"error: {where}") for line in lines) == len(errors)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(**FUZZ)
@given(text=mutated_text())
def test_mutated_manifest_text(manifest: Path, text: str) -> None:
    check(manifest, text)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(**(FUZZ | {"max_examples": max(1, EXAMPLES // 4)}))
@given(text=mutated_text())
def test_mutated_manifest_text_without_libyaml(manifest: Path, text: str) -> None:
    """The same with PyYAML's pure-Python parser, what runs where libyaml is missing (a
    quarter of the examples: that parser is about ten times slower)."""
    with mock.patch.object(yaml_reader, "Loader", yaml_reader.PurePythonLoader):
        check(manifest, text)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(**FUZZ)
@given(text=mutated_tree())
def test_mutated_manifest_trees(manifest: Path, text: str) -> None:
    check(manifest, text)


def _first_inputs(seed: str) -> list[str]:
    """The input names of the first Trigger in ``seed``."""
    for document in yaml.safe_load_all(seed):
        if isinstance(document, dict) and document.get("kind") == "Trigger":
            return list(document["spec"]["inputs"])
    return []


TRIGGER_SEEDS = [(seed, _first_inputs(seed)) for seed in SEEDS if "condition:" in seed]


def conditions(names: list[str]) -> st.SearchStrategy[str]:
    """Boolean expressions over ``names``: mostly what a condition may be, some not."""
    leaves = st.sampled_from([*names, "true", "false"])
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds("({} {} {})".format, inner, st.sampled_from(["&&", "||", "==", "!="]), inner),
            inner.map("!{}".format),
            st.builds("{} ? {} : {}".format, inner, inner, inner),
        ),
        max_leaves=40,
    )


FILTER_TERMS = [
    "data.speed > 80", "data.speed >= 80.5", "event.type == 'x'", "has(data.vin)",
    "event.type.startsWith('com.')", "size(data.items) > 2", "data.vin in ['a', 'b']",
    "event.subject.matches('^v[0-9]+$')", "data.items.exists(i, i.price > 100)",
    "timestamp(event.time) > timestamp('2024-01-01T00:00:00Z')", "int(data.n) == 1u",
    "data.a.b.c == null", "string(data) == 'x'", "event.partitionkey != ''",
]  # fmt: skip
filters = st.recursive(
    st.sampled_from(FILTER_TERMS),
    lambda inner: st.one_of(
        st.builds("({} {} {})".format, inner, st.sampled_from(["&&", "||"]), inner),
        inner.map("!({})".format),
    ),
    max_leaves=20,
)


@st.composite
def trigger_with_expressions(draw: st.DrawFn) -> str:
    seed, names = draw(st.sampled_from(TRIGGER_SEEDS))
    condition = draw(st.one_of(conditions(names), cel_text()))
    cel = draw(st.one_of(filters, cel_text()))
    lines = replace_expression(0, condition, "condition")(seed.split("\n"))
    lines = replace_expression(0, cel, "cel")(lines)
    return "\n".join(lines)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(**FUZZ)
@given(text=trigger_with_expressions())
def test_generated_conditions_and_filters(manifest: Path, text: str) -> None:
    check(manifest, text)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(**FUZZ)
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.lists(st.sampled_from([*HOSTILE_SCALARS, "\n", ": ", "- ", "  ", "---\n"])).map("".join),
    )
)
def test_arbitrary_bytes(manifest: Path, content) -> None:
    check(manifest, content)
