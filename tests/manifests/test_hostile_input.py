"""Manifests that used to crash, hang or eat the memory: each is now one clear error that
names the file (and the document and field when there is one), from ``load_catalog``,
``fnevents validate`` and ``fnevents run`` alike."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from events.app.load import load_catalog
from events.app.plans import bus_plan
from events.cli.main import main
from events.errors import ManifestErrors, quote
from events.manifests import yaml_reader
from events.manifests.loader import MAX_FILE_BYTES
from events.manifests.yaml_reader import MAX_DEPTH, MAX_NODES
from tests.manifests.documents import BUS, CRON_SOURCE, bus, eventsource, trigger
from triggers.conditions import MAX_EXPRESSION_LENGTH

#: The longest error line a hostile manifest may cause (file path aside).
MESSAGE_LIMIT = 2000
EVENTBUS_HEAD = """\
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {name: default}
"""


def errors_for(path: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(path)], [])
    messages = [str(e) for e in caught.value.errors]
    for message in messages:
        assert str(path) in message, message
        assert len(message) < MESSAGE_LIMIT + len(str(path)), message
    return messages


def the_error(path: Path) -> str:
    (message,) = errors_for(path)
    return message


@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_cli_prints_the_error_and_exits_1(command, write, capsys) -> None:
    path = write(EVENTBUS_HEAD + "created: 2024-02-30\n")
    assert main([command, "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"error: {path}, document 1: malformed YAML: cannot read '2024-02-30'" in err
    assert "1 error(s); nothing was started" in err


# 1. values PyYAML's safe loader cannot construct raised ValueError or KeyError


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("created: 2024-02-30", "cannot read '2024-02-30' as timestamp: day is out of range"),
        ("x: !!bool maybe", "cannot read 'maybe' as bool: it is not a YAML boolean"),
        ("x: !!int abc", "cannot read 'abc' as int: invalid literal for int()"),
        ("x: !!int ''", "cannot read '' as int: it is not a valid int"),
        ("x: !!float ''", "cannot read '' as float: it is not a valid float"),
        ("x: " + "9" * 4400, "(4300 more characters) as int: Exceeds the limit (4300 digits)"),
    ],
    ids=["impossible-date", "bool", "int", "empty-int", "empty-float", "4400-digits"],
)
def test_a_value_yaml_cannot_construct_is_an_error_at_its_line(write, line, expected) -> None:
    message = the_error(write(EVENTBUS_HEAD + line + "\n"))
    assert ", document 1: malformed YAML: " in message
    assert expected in message
    assert "at line 4, column" in message


def test_nesting_deeper_than_the_limit_names_the_field(write) -> None:
    message = the_error(write(EVENTBUS_HEAD + "x: " + "[" * 600 + "]" * 600 + "\n"))
    assert f"document 1, field 'x{'[0]' * 10}" in message
    assert f"nested deeper than {MAX_DEPTH} levels at line 4" in message


def test_nesting_up_to_the_limit_is_read(write) -> None:
    depth = MAX_DEPTH - 1  # the document itself is the first level
    path = write(BUS.replace("spec: {}", "spec: {}\nx: " + "[" * depth + "]" * depth))
    assert len(load_catalog([str(path)], []).resources) == 1


# 2 and 3. apiVersion and kind that are not strings


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("apiVersion: [a]\nkind: Trigger\n", "Trigger, field 'apiVersion': expected a string, "),
        ("apiVersion: v1\nkind: {k: 1}\n", "field 'kind': expected a string, got dict {'k': 1}"),
        ("apiVersion: v1\nkind: 5\n", "document 1, field 'kind': expected a string, got int 5"),
        ("apiVersion: 1.5\nkind: Secret\n", "field 'apiVersion': expected a string, got float"),
    ],
    ids=["list", "mapping", "number-no-name", "float"],
)
def test_api_version_and_kind_must_be_strings(write, document, expected) -> None:
    assert expected in the_error(write(document))


# 4. durations too long for a float


@pytest.mark.parametrize(
    ("field", "yaml_path", "value"),
    [
        ("spec.conditionWindow", "  conditionWindow: {}\n", "9" * 401),
        ("spec.delivery.timeout", "  delivery: {{timeout: {}}}\n", "9" * 401),
        ("spec.delivery.backoffDelay", "  delivery: {{backoffDelay: {}}}\n", "9" * 401),
        ("spec.conditionWindow", "  conditionWindow: {}\n", "'1e999'"),
        ("spec.conditionWindow", "  conditionWindow: {}\n", ".inf"),
        ("spec.conditionWindow", "  conditionWindow: {}\n", "2562048h"),
        ("spec.conditionWindow", "  conditionWindow: {}\n", "P99999999999999999999D"),
    ],
    ids=["window", "timeout", "backoff", "1e999", "inf", "go-max+1h", "iso"],
)
def test_a_duration_too_long_is_an_error(write, field, yaml_path, value) -> None:
    message = the_error(write(BUS, CRON_SOURCE, trigger(extra=yaml_path.format(value))))
    assert f"Trigger/t1, field '{field}': " in message
    assert "is too long; durations must be at most 9223372037 seconds" in message


def test_a_duration_that_is_not_a_number_is_an_error(write) -> None:
    message = the_error(write(BUS, CRON_SOURCE, trigger(extra="  conditionWindow: .nan\n")))
    assert "field 'spec.conditionWindow': nan is not a number of seconds" in message


def test_the_longest_go_duration_is_accepted(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger(extra="  conditionWindow: 2562047h\n"))
    catalog = load_catalog([str(path)], [])
    assert catalog.get("Trigger", "default", "t1").resource.spec.conditionWindow == 2562047 * 3600


def test_a_kafka_session_timeout_too_long_is_an_error(write) -> None:
    source = eventsource(
        "orders", "kafka", {"o": {"brokers": "x:9092", "authRequired": False, "x": 1}}
    ).replace('"x": 1', '"sessionTimeout": ' + "9" * 401)
    message = the_error(write(BUS, source))
    assert "EventSource/orders, field 'spec.kafka.o.sessionTimeout': " in message
    assert "is too long" in message


@pytest.mark.parametrize("value", ["9" * 401, "9" * 5000, "2562048h", "1e999"])
def test_a_dapr_duration_too_long_is_an_error(write, value) -> None:
    path = write(bus("pubsub.redis", redisHost="localhost:6379", processingTimeout=value) + BUS)
    messages = errors_for(path)
    assert any(
        "Component/eventbus, field 'spec.metadata': metadata 'processingTimeout': " in m
        and ("is too long" in m or "expected a Go duration" in m)
        for m in messages
    ), messages


# 5. v1 Secrets whose data is not base64, or not text


def secret(value: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: auth}}\ndata: {{password: {value}}}\n"


#: The embedded bus's Component on Redis, its password from the Secret 'auth'.
REDIS_BUS = bus("pubsub.redis", redisHost="localhost:6379").replace(
    "\n---\napiVersion: events",
    "\n    - {name: redisPassword, secretKeyRef: {name: auth, key: password}}\n"
    "---\napiVersion: events",
    1,
)


@pytest.mark.parametrize("value", ['"YQ"', '"not base64!"', '"YWJj ZA=="', '"YWJjZA"'])
def test_secret_data_that_is_not_base64_is_an_error_at_load(write, value) -> None:
    message = the_error(write(secret(value)))
    assert "document 1, Secret/auth, field 'data': data 'password': " in message
    assert "is not base64" in message and "stringData" in message


def test_secret_data_that_is_not_text_is_an_error_where_it_is_used(write) -> None:
    binary = base64.b64encode(b"\xff\xfe").decode()
    messages = errors_for(write(REDIS_BUS, secret(binary)))
    assert any(
        "Component/eventbus, field 'spec.metadata[1].secretKeyRef': cannot use secret 'auth' "
        "key 'password': "
        in m
        and "Secret/auth, field 'data': data 'password' is not UTF-8 text" in m
        for m in messages
    ), messages


def test_secret_data_may_break_lines_as_kubernetes_allows(write, monkeypatch) -> None:
    monkeypatch.delenv("AUTH_PASSWORD", raising=False)
    catalog = load_catalog([str(write(REDIS_BUS, secret('"aHVu\\ndGVy\\r\\nMg=="')))], [])
    plan = bus_plan(catalog, "default", "default")
    assert plan.metadata["redisPassword"] == "hunter2"


def test_a_binary_secret_nobody_uses_is_fine(write) -> None:
    path = write(BUS, secret(base64.b64encode(b"\xff\xfe").decode()))
    assert len(load_catalog([str(path)], []).resources) == 2


# 6. values quoted in messages, and aliases


def test_an_alias_bomb_is_refused_without_expanding_it(write) -> None:
    lines = ['  a0: &a0 ["lolololololol"]'] + [
        f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)
    ]
    text = "apiVersion: events.openfunction.io/v1alpha1\nkind: EventBus\n"
    text += "x:\n" + "\n".join(lines) + "\nmetadata: {name: *a9}\n"
    assert len(text) < 700
    message = the_error(write(text))
    assert f"too large: more than {MAX_NODES} values in this file once aliases (*name) are " in (
        message
    )
    assert "document 1, EventBus, field 'x.a" in message


def test_aliases_that_expand_within_the_limit_are_read(write) -> None:
    text = BUS.replace("spec: {}", "spec: &s {}\nx: [*s, *s, *s]")
    assert len(load_catalog([str(write(text))], []).resources) == 1


def test_a_value_that_contains_itself_is_an_error(write) -> None:
    message = the_error(write(EVENTBUS_HEAD + "x: &loop [1, *loop]\n"))
    assert "field 'x[1]': this value contains itself" in message


def test_a_huge_value_is_quoted_short(write) -> None:
    name = "a" * 100_000
    message = the_error(write(BUS.replace("name: default", f"name: {name}")))
    assert "field 'metadata.name': " + repr("a" * 100) + "... (99900 more characters)" in message
    assert "is not a valid Kubernetes name" in message


def test_a_huge_unknown_field_is_quoted_short(write) -> None:
    # an implicit key is at most 1024 characters in YAML: '? ' makes a longer one explicit
    message = the_error(write(BUS.replace("spec: {}", "spec:\n  ? " + "b" * 50_000 + "\n  : 1")))
    assert "unknown field 'bbbb" in message and "(49900 more characters)" in message


@pytest.mark.parametrize(
    "value",
    [
        "x" * 1_000_000,
        b"\xff" * 1_000_000,
        10**4000,
        list(range(1_000_000)),
        {str(n): n for n in range(100_000)},
    ],
    ids=["str", "bytes", "int", "list", "dict"],
)
def test_any_value_is_quoted_short(value) -> None:
    assert len(quote(value)) < 150


def test_a_value_that_contains_itself_is_quoted_short() -> None:
    loop: list = [1]
    loop.append(loop)
    nested: list = []
    for _ in range(10_000):
        nested = [nested]
    assert quote(loop).endswith("[...]]]]")
    assert len(quote(nested)) < 150


def test_a_document_reports_at_most_twenty_errors(write) -> None:
    component = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: c}\n"
    component += "spec: {type: pubsub.in-memory}\nscopes: [" + ", ".join(["[1]"] * 50) + "]\n"
    messages = errors_for(write(component))
    assert len(messages) == 21
    assert messages[-1].endswith("document 1: ... and 30 more error(s) in this document")


# 7. CEL expressions: longer than the limit is refused before the library sees it


def test_a_condition_longer_than_the_limit_is_refused(write) -> None:
    condition = "tick && " + "é" * 200_000
    message = the_error(write(BUS, CRON_SOURCE, trigger(condition)))
    assert "Trigger/t1, field 'spec.subscribers[0].condition': condition 'tick && éé" in message
    assert f"is 200008 characters long; at most {MAX_EXPRESSION_LENGTH} are allowed" in message


def test_a_filter_longer_than_the_limit_is_refused(write) -> None:
    cel = "event.type == '" + "x" * MAX_EXPRESSION_LENGTH + "'"
    extra = f'    filter: {{cel: "{cel}"}}\n'
    message = the_error(write(BUS, CRON_SOURCE, trigger(extra=extra)))
    assert "field 'spec.subscribers[0].filter.cel': filter " in message
    assert f"characters long; at most {MAX_EXPRESSION_LENGTH} are allowed" in message


def test_a_character_cel_has_no_use_for_is_reported_before_the_library_sees_it(write):
    """The library reports each such character with the whole line: 2,000 of them made a
    message of megabytes (and 20,000 took 1.6 GB)."""
    message = the_error(write(BUS, CRON_SOURCE, trigger("tick && " + "é" * 2000)))
    assert "condition 'tick && é" in message
    assert "does not compile at column 9: 'é' cannot appear outside a string" in message


def test_a_single_ampersand_suggests_two(write) -> None:
    extra = "    filter: {cel: \"event.type == 'a' & has(data.x)\"}\n"
    message = the_error(write(BUS, CRON_SOURCE, trigger(extra=extra)))
    assert "field 'spec.subscribers[0].filter.cel'" in message
    assert "at column 19: '&' cannot appear outside a string (did you mean '&&'?)" in message


def test_a_long_expression_that_does_not_compile_is_shown_around_the_fault(write) -> None:
    condition = "tick && (" + "tick && " * 200 + "é"
    message = the_error(write(BUS, CRON_SOURCE, trigger(condition)))
    assert "does not compile at column 1610" in message
    *_, shown, caret = message.splitlines()
    assert shown.startswith("    ...") and shown.endswith("é")
    assert caret == " " * (len(shown) - 1) + "^"


def test_a_condition_may_not_loop(write) -> None:
    """A comprehension in a condition would run for every row of the truth table at load:
    five nested ones over 30 items take minutes."""
    items = "[" + ", ".join(str(n) for n in range(30)) + "]"
    condition = f"{items}.all(tick, {items}.all(tick, true)) && tick"
    message = the_error(write(BUS, CRON_SOURCE, trigger(condition)))
    assert "field 'spec.subscribers[0].condition'" in message
    assert "cannot be evaluated over boolean inputs: it uses a comprehension" in message


@pytest.mark.parametrize(
    ("condition", "part"),
    [("tick == null", "'null'"), ("tick && 'x' == 'x'", "\"'x'\"")],
)
def test_a_condition_is_booleans_only(write, condition, part) -> None:
    """So every assignment of its inputs gives true or false, and nothing needs evaluating
    at load (a truth table of 4,096 rows per subscriber made 15,000 subscribers take
    minutes)."""
    message = the_error(write(BUS, CRON_SOURCE, trigger(condition)))
    assert "field 'spec.subscribers[0].condition'" in message
    expected = f"must be true or false, and so must every part of it, but at column 9 it has {part}"
    assert expected in message


# 8. lone surrogates


SURROGATE_TOPIC = '    deadLetterTopic: "dl-\\ud800"\n'


def test_a_surrogate_escape_is_an_error_naming_the_field(write) -> None:
    message = the_error(write(BUS, CRON_SOURCE, trigger(extra=SURROGATE_TOPIC)))
    assert "document 3, Trigger/t1, field 'spec.subscribers[0].deadLetterTopic': " in message
    assert "holds \\ud800, half of a UTF-16 surrogate pair" in message


def test_the_pure_python_parser_refuses_a_surrogate_too(write, monkeypatch) -> None:
    monkeypatch.setattr(yaml_reader, "Loader", yaml_reader.PurePythonLoader)
    message = the_error(write(BUS, CRON_SOURCE, trigger(extra=SURROGATE_TOPIC)))
    assert "field 'spec.subscribers[0].deadLetterTopic': 'dl-\\ud800' holds \\ud800" in message


def test_a_surrogate_in_a_large_file_is_refused_at_its_line(write) -> None:
    """Only a small file is read again to name the field; a large one gets libyaml's
    line and column."""
    if yaml_reader.Loader is yaml_reader.PurePythonLoader:
        pytest.skip("libyaml is not installed: the pure-Python parser names the field")
    padding = "# " + "x" * 300_000 + "\n"
    message = the_error(write(BUS, padding + trigger(extra=SURROGATE_TOPIC)))
    assert "document 2: malformed YAML: found invalid Unicode character escape code" in message
    assert "halves of UTF-16 surrogate pairs" in message and "at line 19, column 28" in message


@pytest.mark.parametrize("loader_class", ["Loader", "PurePythonLoader"])
def test_an_escape_past_the_last_character_is_an_error(write, monkeypatch, loader_class):
    """Found by the fuzz suite: PyYAML's own scanner raised ValueError from chr()."""
    monkeypatch.setattr(yaml_reader, "Loader", getattr(yaml_reader, loader_class))
    message = the_error(write(EVENTBUS_HEAD + 'x: "\\U00110000"\n'))
    assert "document 1: malformed YAML: " in message and "at line 4, column 7" in message
    assert "U0010FFFF" in message


def test_validate_prints_what_it_accepts(write, capsys) -> None:
    path = write(BUS, CRON_SOURCE, trigger(extra='    deadLetterTopic: "dl-\\U0001F600"\n'))
    assert main(["validate", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ok: no errors" in out


# 9. libyaml, and the size limits


def test_libyaml_parses_when_it_is_installed() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    assert yaml_reader.Loader is yaml_reader.LibyamlLoader


def test_both_parsers_read_the_examples_the_same() -> None:
    root = Path(__file__).parent.parent.parent
    files = sorted(root.glob("examples/**/*.yaml")) + sorted(root.glob("tests/fixtures/**/*.yaml"))
    assert len(files) > 10
    for file in files:
        text = file.read_text()
        read = [
            yaml_reader.read_yaml(text, str(file), c)
            for c in (yaml_reader.Loader, yaml_reader.PurePythonLoader)
        ]
        assert read[0] == read[1], file


def test_many_deep_documents_stop_at_the_first(write) -> None:
    document = EVENTBUS_HEAD + "x: " + "[" * 300 + "]" * 300 + "\n"
    message = the_error(write(*[document] * 300))
    assert "document 1, field 'x[0]" in message and "nested deeper than" in message


def test_a_file_larger_than_the_limit_is_refused(write) -> None:
    path = write(BUS + "# " + "x" * MAX_FILE_BYTES + "\n")
    message = the_error(path)
    assert f"the file is larger than {MAX_FILE_BYTES} bytes" in message


def test_a_file_with_too_many_values_is_refused(write) -> None:
    scopes = "[" + ",".join(["a"] * MAX_NODES) + "]"
    component = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: c}\n"
    message = the_error(write(component + "spec: {type: pubsub.in-memory}\nscopes: " + scopes))
    assert f"document 1, field 'scopes': too large: more than {MAX_NODES} values" in message
