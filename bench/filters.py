"""Trigger filter evaluations per second: our EventFilter against CEL engines.

Every CEL row evaluates ``event.type == "com.example.telemetry" && event.data.speed > 80.0``
on the same telemetry reading (seven attributes, two extensions, five data fields), and
each result is checked before timing (true for the reading; false for a slow one and for
another type):

* (a) ours, end to end: ``CompiledFilter.matches(event)`` on a ``CloudEvent``. This
  expression has the plain-Python shortcut (``triggers/celfast.py``), which answers when
  it is sure of the engine's answer and otherwise runs the engine; every result is the
  engine's (``tests/fastpaths/`` checks that on generated cases).
* (a2) ours with the shortcut off: the engine on a context built from the event (counted),
  holding only the attributes and data fields the expression reads (``type`` and
  ``data.speed``). This is what a filter outside the shortcut's grammar costs.
* (b) the reference: the same ``common-expression-language`` program that (a) runs, given
  a dict of the whole event (every attribute and the data) built once, outside the loop.
  The engine converts a dict context to CEL values on every call, as it does for (a).
* (b2) the same program with a ``cel.Context`` built once: the conversion is cached, so
  this is the engine's floor, which no per-event filter can reach (each event is new).
* (c) ``cel-python`` (module ``celpy``), the context converted once with ``json_to_cel``.
* (d) ``cel-expr-python`` (Google's C++ CEL), the same dict as (b), converted per call;
  (d2) with an ``Activation`` built once (conversion cached, like (b2)).
* (e) ours, attribute clauses only (``exact type`` + ``prefix subject``): the fast path,
  for an equivalent test that cannot look at data.

The speed is 92.5, a double: ``celpy`` refuses to compare an int with ``80.0`` (a CEL
"no such overload"), which (a) and (b) allow. (c), (d) and (d2) are optional
(``pip install -e '.[bench]'``); a missing one is named under the table. Timing is
``time.perf_counter`` around a plain loop with the garbage collector off, each row's
loop sized to about ``SECONDS``, best of 3, the rows interleaved so a burst of load on
the machine hits all of them.
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable

from bench.report import Table, progress, sized
from events.cloudevent import CloudEvent
from events.manifests.extensions import FilterSpec
from triggers import celcore
from triggers.celfilter import CelClause
from triggers.filters import compile_filter

EXPRESSION = 'event.type == "com.example.telemetry" && event.data.speed > 80.0'
REPEATS = 3
SECONDS = 0.3
Check = Callable[[CloudEvent], object]


def reading(speed: float, type: str = "com.example.telemetry") -> CloudEvent:
    """A telemetry reading as the MQTT source makes one, with two extensions."""
    return CloudEvent(
        id="a3f1c2d4e5f60718",
        source="mqtt://localhost:1883/vehicles/v002/telemetry",
        type=type,
        datacontenttype="application/json",
        subject="vehicles/v002/telemetry",
        time="2024-05-01T12:30:45.123456Z",
        extensions={"partitionkey": "v002", "fleet": "north"},
        data={"vehicleId": "v002", "seq": 1841, "speed": speed, "battery": 64, "ok": True},
    )


def _context(event: CloudEvent) -> dict:
    return {"event": {**event.attributes(), "data": event.data}}


def ours(_: dict) -> Check:
    return compile_filter(FilterSpec(cel=EXPRESSION)).matches


def ours_engine_only(_: dict) -> Check:
    clause = CelClause(EXPRESSION, fast=False)
    return lambda event: clause.matches(event, _ignore)


def _ignore(problem: str, event: CloudEvent) -> None:
    """No evaluation error happens on these readings; the checks in _build see results."""


def attributes_only(_: dict) -> Check:
    spec = FilterSpec(exact={"type": "com.example.telemetry"}, prefix={"subject": "vehicles/"})
    return compile_filter(spec).matches


def raw_cel(context: dict) -> Check:
    program = celcore.compile(EXPRESSION)
    return lambda _event: program.execute(context)


def raw_cel_cached(context: dict) -> Check:
    program = celcore.compile(EXPRESSION)
    cached = celcore._core.Context(context)
    return lambda _event: program.execute(cached)


def celpy_engine(context: dict) -> Check:
    import celpy

    env = celpy.Environment()
    program = env.program(env.compile(EXPRESSION))
    activation = {"event": celpy.json_to_cel(context["event"])}
    return lambda _event: bool(program.evaluate(activation))


def _cel_expr(context: dict):
    from cel_expr_python import cel

    env = cel.NewEnv(variables={"event": cel.Type.Map(cel.Type.STRING, cel.Type.DYN)})
    return env, env.compile(EXPRESSION)


def cel_expr_engine(context: dict) -> Check:
    _, expression = _cel_expr(context)
    return lambda _event: expression.eval(data=context).value()


def cel_expr_cached(context: dict) -> Check:
    env, expression = _cel_expr(context)
    activation = env.Activation(data=context)
    return lambda _event: expression.eval(activation).value()


#: label, builder, module that must be importable (None: always there)
ROWS: list[tuple[str, Callable[[dict], Check], str | None]] = [
    ("(a) fnevents EventFilter, from the CloudEvent", ours, None),
    ("(a2) fnevents, shortcut off: engine, from the CloudEvent", ours_engine_only, None),
    ("(b) common-expression-language, dict context", raw_cel, None),
    ("(b2) common-expression-language, cached Context", raw_cel_cached, None),
    ("(c) cel-python (celpy), converted activation", celpy_engine, "celpy"),
    ("(d) cel-expr-python, dict context", cel_expr_engine, "cel_expr_python"),
    ("(d2) cel-expr-python, cached Activation", cel_expr_cached, "cel_expr_python"),
    ("(e) fnevents exact+prefix, no CEL", attributes_only, None),
]
REFERENCE = ROWS[2][0]
PACKAGES = {"celpy": "cel-python", "cel_expr_python": "cel-expr-python"}


def _loop(check: Check, event: CloudEvent, n: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            check(event)
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _build(fast: CloudEvent) -> tuple[dict[str, Check], list[str]]:
    """Build every row that can run, checking it gets true and false right first."""
    checks: dict[str, Check] = {}
    missing: list[str] = []
    other_type = reading(92.5, type="com.example.alert")
    for label, build, module in ROWS:
        if module is not None and not _importable(module):
            missing.append(f"{PACKAGES[module]} is not installed: row {label.split()[0]} skipped")
            continue
        check = build(_context(fast))
        assert check(fast) is True, f"{label} does not pass the fast reading"
        negatives = [other_type] + ([] if build is attributes_only else [reading(41.0)])
        for negative in negatives:
            assert build(_context(negative))(negative) is False, f"{label} passes {negative}"
        checks[label] = check
    return checks, missing


def _sizes(checks: dict[str, Check], event: CloudEvent, seconds: float) -> dict[str, int]:
    """Loop sizes that take about ``seconds`` each (celpy is ~1000x slower than (e))."""
    sizes = {}
    for label, check in checks.items():
        per_call = _loop(check, event, 200) / 200
        sizes[label] = max(200, int(seconds / per_call))
    return sizes


def run(quick: bool = False) -> list[Table]:
    fast = reading(92.5)
    checks, missing = _build(fast)
    sizes = _sizes(checks, fast, sized(SECONDS / 3 if quick else SECONDS, 0.005))
    best: dict[str, float] = {}
    for repeat in range(REPEATS):
        progress(f"filters: repeat {repeat + 1}/{REPEATS} over {len(checks)} rows")
        for label, check in checks.items():
            rate = sizes[label] / _loop(check, fast, sizes[label])
            best[label] = max(best.get(label, 0.0), rate)
    table = Table(f"Filter evaluations: {EXPRESSION}", "evals/s", "(b) evals/s")
    for label, _, _ in ROWS:
        if label in best:  # a row whose engine is missing is named in the notes instead
            table.add(label, "evals/s", best[label], best[REFERENCE])
    table.notes.append("ratio = row / (b), measured in the same run; higher is faster")
    table.notes.extend(missing)
    if missing:
        table.notes.append("install the alternatives with: pip install -e '.[bench]'")
    return [table]


if __name__ == "__main__":
    for result in run():
        print(result.render())
