"""Trigger filters, one test per rule in triggers/filters.py, on real CloudEvents."""

from __future__ import annotations

import io
import time

import pytest

from events.brokers.memory.bus import MemoryBus
from events.cloudevent import CloudEvent
from events.delivery.sinks import SinkClient
from events.errors import ExpressionError
from events.manifests.extensions import FilterSpec
from events.observability.console import Console
from events.observability.metrics import Metrics
from tests.helpers import counter
from tests.sink import RecordingSink
from tests.triggers.harness import OwnedTrigger, subscriber
from triggers import celcore
from triggers.celfilter import FUNCTIONS, CelClause
from triggers.filters import CompiledFilter, ErrorLog, compile_filter
from triggers.subscriber import DeliveryContext

TELEMETRY = "com.example.telemetry"


def reading(data=None, **attributes) -> CloudEvent:
    attributes.setdefault("id", "r-1")
    attributes.setdefault("subject", "vehicles/v7/telemetry")
    type_ = attributes.pop("type", TELEMETRY)
    return CloudEvent.create(type_, "mqtt://broker/vehicles/v7", data, **attributes)


def passes(data=None, spec: FilterSpec | None = None, **attributes) -> bool:
    assert spec is not None
    return compile_filter(spec).matches(reading(data, **attributes))


def cel(expression: str, data=None, **attributes) -> bool:
    return passes(data, FilterSpec(cel=expression), **attributes)


class Bound:
    """A filter bound as a trigger binds it, with the metric and the log at hand."""

    def __init__(self, spec: FilterSpec, where: str = "subscribers[0]") -> None:
        self.metrics = Metrics()
        self.log: list[str] = []
        self.where = where
        self.filter = compile_filter(spec)
        self.filter.bind("ns/t", where, self.metrics, self.log.append)

    @property
    def errors(self) -> float:
        return counter(self.metrics, "filter_errors", "ns/t", self.where)


# -- attribute clauses ------------------------------------------------------------------


def test_exact_prefix_and_suffix_test_context_attributes() -> None:
    assert passes(spec=FilterSpec(exact={"type": TELEMETRY}))
    assert not passes(spec=FilterSpec(exact={"type": "com.example"}))
    assert passes(spec=FilterSpec(prefix={"source": "mqtt://broker/"}))
    assert not passes(spec=FilterSpec(prefix={"source": "kafka://"}))
    assert passes(spec=FilterSpec(suffix={"subject": "/telemetry"}))
    assert not passes(spec=FilterSpec(suffix={"subject": "/alerts"}))


def test_attribute_clauses_test_extensions() -> None:
    spec = FilterSpec(exact={"fleet": "north"}, prefix={"partitionkey": "v"})
    assert passes(spec=spec, fleet="north", partitionkey="v7")
    assert not passes(spec=spec, fleet="south", partitionkey="v7")
    assert not passes(spec=spec, fleet="north", partitionkey="x7")


def test_non_string_extensions_compare_in_their_canonical_string_form() -> None:
    assert passes(spec=FilterSpec(exact={"priority": "7"}), priority=7)
    assert passes(spec=FilterSpec(prefix={"priority": "-1"}), priority=-12)
    assert not passes(spec=FilterSpec(exact={"priority": "7.0"}), priority=7)
    assert passes(spec=FilterSpec(exact={"urgent": "true"}), urgent=True)
    assert not passes(spec=FilterSpec(exact={"urgent": "True"}), urgent=True)
    assert passes(spec=FilterSpec(exact={"sig": "AQI="}), sig=b"\x01\x02")  # base64


@pytest.mark.parametrize("kind", ["exact", "prefix", "suffix"])
def test_a_missing_attribute_never_matches_even_the_empty_string(kind: str) -> None:
    assert not passes(spec=FilterSpec(**{kind: {"fleet": ""}}))
    assert not passes(spec=FilterSpec(**{kind: {"dataschema": ""}}))
    assert passes(spec=FilterSpec(**{kind: {"fleet": ""}}), fleet="")  # present, though empty


def test_every_clause_given_must_hold() -> None:
    spec = FilterSpec(
        exact={"type": TELEMETRY}, suffix={"subject": "/telemetry"}, cel="data.speed > 80"
    )
    assert passes({"speed": 90}, spec)
    assert not passes({"speed": 70}, spec)
    assert not passes({"speed": 90}, spec, subject="vehicles/v7/alerts")
    assert not passes({"speed": 90}, spec, type="com.example.alert")


def test_the_description_lists_every_clause() -> None:
    spec = FilterSpec(exact={"type": "a"}, prefix={"source": "b"}, cel="data.x == 1")
    assert (
        compile_filter(spec).description == "exact type='a', prefix source='b', cel 'data.x == 1'"
    )


# -- cel: variables and data ------------------------------------------------------------


def test_cel_sees_context_attributes_and_extensions_with_their_types() -> None:
    assert cel(f'event.type == "{TELEMETRY}" && event.subject.endsWith("/telemetry")')
    assert cel('event.id == "r-1" && event.specversion == "1.0"')
    assert cel("event.priority > 5 && event.urgent", priority=7, urgent=True)
    assert cel('event.fleet == "north"', fleet="north")
    assert not cel('event.fleet == "north"', fleet="south")
    assert cel('timestamp(event.time) > timestamp("2020-01-01T00:00:00Z")')


def test_has_tells_whether_an_attribute_is_there() -> None:
    assert cel("has(event.fleet)", fleet="north")
    assert not cel("has(event.fleet)")
    assert not cel("has(event.dataschema)")


def test_data_and_event_data_are_the_same_json_value() -> None:
    assert cel("data.speed > 80", {"speed": 90})
    assert cel("event.data.speed > 80", {"speed": 90})
    assert not cel("event.data.speed > 80", {"speed": 70})
    assert cel('data.vehicle == "v7" && data.ok', {"vehicle": "v7", "ok": True})


@pytest.mark.parametrize(
    ("expression", "speed", "expected"),
    [
        ("data.speed > 80", 90, True),
        ("data.speed > 80", 90.5, True),
        ("data.speed > 80", 80.0, False),
        ("data.speed > 80.0", 90, True),
        ("data.speed > 80.0", 80, False),
        ("data.speed >= 80.0", 80, True),
        ("data.speed == 90", 90.0, True),
        ("data.speed == 90.0", 90, True),
        ("data.speed < 80", 79.5, True),
        ("data.speed != 80.5", 80, True),
    ],
)
def test_int_and_double_compare_by_value_both_ways(expression, speed, expected) -> None:
    # JSON does not say whether 90 is an int or a double; a library update that went
    # back to CEL's strict "no such overload" would fail here rather than drop events.
    bound = Bound(FilterSpec(cel=expression))
    assert bound.filter.matches(reading({"speed": speed})) is expected
    assert bound.errors == 0


def test_nested_data_and_lists() -> None:
    data = {"reading": {"wheels": [{"pressure": 2.4}, {"pressure": 1.7}]}, "tags": ["eu"]}
    assert cel("data.reading.wheels[1].pressure < 2.0", data)
    assert cel("data.reading.wheels.exists(w, w.pressure < 2)", data)
    assert not cel("data.reading.wheels.all(w, w.pressure < 2)", data)
    assert cel('"eu" in data.tags && size(data.reading.wheels) == 2', data)
    assert cel("data.exists(r, r.speed > 80)", [{"speed": 10}, {"speed": 99}])


def test_json_data_that_is_not_an_object_is_that_value() -> None:
    assert cel("data > 5 && data < 8.5", 7)
    assert cel('data == "on"', "on", datacontenttype="application/json")
    assert cel("data", True) and not cel("data", False)
    assert cel("size(data) == 2 && data[1] == 2.5", [1, 2.5])


def test_text_data_is_a_string() -> None:
    assert cel('data == "on"', "on", datacontenttype="text/plain")
    assert cel('data.startsWith("o") && event.data.size() == 2', "on", datacontenttype="text/plain")


def test_binary_data_is_bytes() -> None:
    raw = b"\x01\x02ok"
    assert cel('data == b"\\x01\\x02ok"', raw)
    assert cel("size(data) == 4", raw, datacontenttype="application/octet-stream")
    assert cel('string(b"ok") == "ok" && string(data).endsWith("ok")', raw)
    assert cel("size(data) == 2", bytearray(b"ab"), datacontenttype="application/octet-stream")


def test_without_data_data_is_null_and_event_has_no_data() -> None:
    assert cel("data == null")
    assert not cel("has(event.data)")
    assert cel("has(event.data)", {"speed": 1})
    assert not cel("data == null", {"speed": 1})


def test_the_context_holds_only_what_the_expression_looks_at() -> None:
    event = reading({"speed": 90}, fleet="north")
    assert CelClause('event.type == "x"').context(event) == {"event": {"type": TELEMETRY}}
    assert CelClause("data.speed > 1").context(event) == {"data": {"speed": 90}}
    only = CelClause('event.fleet == "n" && event.data.speed > 1').context(event)
    assert only == {"event": {"fleet": "north", "data": {"speed": 90}}}


def test_an_expression_that_looks_at_the_whole_event_sees_all_of_it() -> None:
    event = reading({"speed": 90}, fleet="north")
    attributes = len(event.attributes()) + 1  # and data
    assert CompiledFilter(FilterSpec(cel=f"size(event) == {attributes}")).matches(event)
    assert cel('event["type"] == event.type && "fleet" in event', fleet="north")
    assert cel('event.exists(k, k == "data")', {"speed": 1})
    assert not cel('event.exists(k, k == "data")')


# -- cel: errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "data", "problem"),
    [
        ("data.speed > 80", {"battery": 50}, "no such key: 'speed'"),
        ("data.speed > 80", {"speed": "fast"}, "No such overload"),
        ("data.speed > 80", None, "No such overload"),
        ("data.speed", {"speed": 90}, "gives int 90, not true or false"),
        ("event.data.speed > 80", None, "no such key: 'data'"),
        ("data[3] == 1", [1], "index out of bounds"),
        ("1 / data.n > 0", {"n": 0}, "division by zero"),
    ],
)
def test_an_evaluation_error_is_no_match_counted_and_logged(expression, data, problem) -> None:
    bound = Bound(FilterSpec(cel=expression))
    assert bound.filter.matches(reading(data)) is False
    assert bound.errors == 1
    (line,) = bound.log
    assert line.startswith(f"filter subscribers[0] (cel {expression!r}) could not be evaluated")
    assert f"event id=r-1 type={TELEMETRY}, so it does not match" in line
    assert problem in line


def test_has_turns_a_missing_field_into_a_plain_false() -> None:
    bound = Bound(FilterSpec(cel="has(data.speed) && data.speed > 80"))
    assert bound.filter.matches(reading({"battery": 50})) is False
    assert bound.filter.matches(reading({"speed": 81})) is True
    assert bound.errors == 0 and bound.log == []


def test_errors_are_logged_once_per_interval_and_all_counted() -> None:
    bound = Bound(FilterSpec(cel="data.speed > 80"), where="inputs.telemetry")
    for n in range(5):
        assert not bound.filter.matches(reading({"battery": n}))
    assert bound.errors == 5
    assert len(bound.log) == 1, "one line per 10 s per filter"


def test_the_next_line_says_how_many_errors_were_left_out() -> None:
    log: list[str] = []
    counted: list[int] = []
    errors = ErrorLog(lambda: counted.append(1), log.append, "filter x", interval=0.2)
    event = reading()
    for _ in range(4):
        errors("boom", event)
    assert len(log) == 1 and "not shown" not in log[0]
    time.sleep(0.25)
    errors("boom", event)
    assert len(log) == 2
    assert "(3 more such error(s) since the last line not shown)" in log[1]
    assert len(counted) == 5
    errors("boom", event)
    assert len(log) == 2, "a new interval starts at each line"


def test_an_unbound_filter_still_never_raises() -> None:
    assert cel("data.speed > 80", {"speed": "fast"}) is False


def test_binding_again_moves_where_errors_are_counted() -> None:
    bound = Bound(FilterSpec(cel="data.speed > 80"))
    elsewhere = Metrics()
    bound.filter.bind("ns/u", "inputs.b", elsewhere, bound.log.append)
    bound.filter.matches(reading({}))
    assert bound.errors == 0
    assert counter(elsewhere, "filter_errors", "ns/u", "inputs.b") == 1
    assert "filter inputs.b" in bound.log[0]


# -- cel: compile errors ----------------------------------------------------------------


def test_an_unknown_variable_is_refused_with_a_caret_and_the_allowed_ones() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_filter(FilterSpec(cel='event.type == "x" && speed > 80'))
    message = str(caught.value)
    assert "uses unknown variable(s) 'speed' at column 22" in message
    assert '    event.type == "x" && speed > 80\n' + " " * 25 + "^" in message
    assert "a filter can use: 'event', the CloudEvent" in message
    assert "'data', short for event.data" in message


def test_several_unknown_variables_are_all_named() -> None:
    with pytest.raises(ExpressionError, match=r"'attributes', 'payload'"):
        compile_filter(FilterSpec(cel="payload.x > 1 || attributes.type == 'a'"))


def test_comprehension_variables_are_not_unknown() -> None:
    compile_filter(FilterSpec(cel="data.items.exists(item, item.qty > 1)"))
    compile_filter(FilterSpec(cel="data.items.map(i, i.qty).all(q, q > 0)"))
    with pytest.raises(ExpressionError, match="'other'"):
        compile_filter(FilterSpec(cel="data.items.exists(item, other > 1)"))


def test_an_unknown_function_is_refused_with_a_caret_and_the_known_ones() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_filter(FilterSpec(cel='event.type.startswith("com.") && data.ok'))
    message = str(caught.value)
    assert "calls unknown function(s) startswith at column 12" in message
    assert '\n    event.type.startswith("com.") && data.ok\n' + " " * 15 + "^" in message
    assert "functions available: " in message and "startsWith" in message


def test_every_function_said_to_be_available_is_one_the_engine_runs() -> None:
    """The list is ours, so check it against the engine: each must evaluate, not be
    'undefined'."""
    stamp = 'timestamp("2026-11-26T10:00:00Z")'
    calls = {
        "size": 'size("ab")', "contains": '"ab".contains("a")',
        "startsWith": '"ab".startsWith("a")', "endsWith": '"ab".endsWith("b")',
        "matches": '"ab".matches("a.")', "int": "int(1.5)", "uint": "uint(1)",
        "double": "double(1)", "string": "string(1)", "bytes": 'bytes("a")',
        "timestamp": stamp, "duration": 'duration("1s")', "type": "type(1)", "dyn": "dyn(1)",
    }  # fmt: skip
    calls |= {name: f"{stamp}.{name}()" for name in FUNCTIONS if name.startswith("get")}
    assert set(calls) == FUNCTIONS
    for name, call in calls.items():
        compile_filter(FilterSpec(cel=f"{call} != null || true"))  # known at load
        assert celcore.compile(call).execute({}) is not None, name


def test_a_syntax_error_shows_column_and_caret() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_filter(FilterSpec(cel="data.speed >> 80"))
    message = str(caught.value)
    assert message.startswith("filter 'data.speed >> 80' does not compile at column")
    assert "\n    data.speed >> 80\n" in message and "^" in message


def test_a_name_inside_a_string_is_not_a_variable() -> None:
    assert cel('event.type != "speed > 80"')
    with pytest.raises(ExpressionError, match="column 18"):
        compile_filter(FilterSpec(cel='"speed" == "" || speed'))


# -- in a trigger -----------------------------------------------------------------------


def filtered_trigger(bus: MemoryBus, subs, input_filter) -> tuple[OwnedTrigger, io.StringIO]:
    output = io.StringIO()
    ctx = DeliveryContext(bus, SinkClient(), Metrics(), Console(stream=output))
    inputs, filters = {"a": "in"}, {"a": input_filter}
    return OwnedTrigger("ns/t", inputs, subs, 60.0, "ns-t", ctx, input_filters=filters), output


async def test_a_trigger_binds_its_filters_and_routes_by_them() -> None:
    async with RecordingSink() as fast, RecordingSink() as everything:
        bus = MemoryBus()
        over_80 = compile_filter(FilterSpec(cel="data.v > 80"))
        subs = [
            subscriber(0, sink_url=fast.url, filter=over_80),
            subscriber(1, sink_url=everything.url),
        ]
        only_cars = compile_filter(FilterSpec(prefix={"subject": "cars/"}))
        trig, output = filtered_trigger(bus, subs, only_cars)
        await trig.start()
        events = [
            ("cars/1", {"v": 90}),  # both subscribers
            ("cars/2", {"v": 10}),  # subscriber 1 only
            ("bikes/3", {"v": 99}),  # dropped at the input
            ("cars/4", {"x": 1}),  # subscriber 1 only; an error in subscriber 0's filter
        ]
        for n, (subject, data) in enumerate(events):
            await bus.publish("in", CloudEvent.create("t", "/s", data, id=f"e{n}", subject=subject))
        await everything.wait_for(3)
        await fast.wait_for(1)
        await trig.stop()
        await bus.close()
        assert [e.id for e in fast.accepted] == ["e0"]
        assert sorted(e.id for e in everything.accepted) == ["e0", "e1", "e3"]
        assert fast.accepted[0].data == {"v": 90}, "the subscriber gets the event unchanged"
        metrics = trig.ctx.metrics
        assert counter(metrics, "filtered", "ns/t", "inputs.a") == 1
        assert counter(metrics, "filtered", "ns/t", "subscribers[0]") == 2
        assert counter(metrics, "filter_errors", "ns/t", "subscribers[0]") == 1
        assert counter(metrics, "filter_errors", "ns/t", "inputs.a") == 0
        text = output.getvalue()
        assert "warning: trigger ns/t: filter subscribers[0] (cel 'data.v > 80')" in text
        assert "event id=e3" in text and "no such key: 'v'" in text


# -- the context shortcut never changes a result ----------------------------------------

SHAPES = [
    None,
    {"speed": 90, "battery": 10, "gps": {"lat": 1.5}},
    {"speed": "fast"},
    {"battery": 3},
    [{"speed": 99}],
    "text",
    b"\x00\x01",
]
EXPRESSIONS = [
    "data.speed > 80",
    "event.data.speed > 80.0 && event.type.startsWith('com.')",
    "has(data.speed) && data.battery < 20",
    "has(event.data) && has(event.data.gps) && event.data.gps.lat > 1.0",
    "data == null || size(data) >= 1",
    "event.data.exists(k, k == 'speed')",
    "'speed' in data",
    "data['speed'] == 90",
    "has(event.fleet) && event.fleet == 'north' || event.subject.endsWith('/x')",
    "size(event) > 5",
    "event.data",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_pruned_context_gives_what_the_whole_event_gives(expression: str) -> None:
    program = celcore.compile(expression)
    clause = CelClause(expression)
    for data in SHAPES:
        event = reading(data, fleet="north")
        whole = {**event.attributes(), **({} if data is None else {"data": data})}
        try:
            expected = program.execute({"event": whole, "data": data})
        except Exception as exc:  # noqa: BLE001 -- any error is what we compare with
            expected = type(exc)
        problems: list[str] = []
        got = clause.matches(event, lambda problem, _event, seen=problems: seen.append(problem))
        if expected is True or expected is False:
            assert (got, problems) == (expected, []), f"{expression} on {data!r}"
        else:
            assert got is False and len(problems) == 1, f"{expression} on {data!r}: {expected}"
