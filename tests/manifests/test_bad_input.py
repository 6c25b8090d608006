"""Each bad input gives one clear message naming the file and field, and exit 1."""

from __future__ import annotations

import pytest

from events.app.load import load_catalog
from events.cli.main import main
from events.errors import ManifestErrors
from tests.manifests.documents import BUS, CRON_SOURCE, trigger


def errors_for(path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(path)], [])
    return [str(e) for e in caught.value.errors]


def test_malformed_yaml_names_the_line(write) -> None:
    path = write("kind: EventBus\nmetadata: {name: x\n")
    (message,) = errors_for(path)
    assert str(path) in message
    assert "malformed YAML" in message and "line 3" in message


def test_unknown_kind_lists_the_known_kinds(write) -> None:
    path = write(
        "apiVersion: events.openfunction.io/v1alpha1\nkind: EventSauce\nmetadata: {name: x}\n"
    )
    (message,) = errors_for(path)
    assert "unknown kind 'EventSauce'" in message
    assert "EventSource (events.openfunction.io/v1alpha1)" in message
    assert "document 1" in message


def test_unknown_api_version_says_which_one_is_expected(write) -> None:
    path = write("apiVersion: events.openfunction.io/v2\nkind: Trigger\nmetadata: {name: x}\n")
    (message,) = errors_for(path)
    assert "unknown apiVersion 'events.openfunction.io/v2' for kind Trigger" in message
    assert "expected 'events.openfunction.io/v1alpha1'" in message


def test_missing_required_field_names_the_path(write) -> None:
    path = write(BUS, CRON_SOURCE, trigger().replace("  eventBus: default\n", ""))
    (message,) = errors_for(path)
    assert "document 3" in message and "Trigger/t1" in message
    assert "field 'spec.eventBus': is required but missing" in message


def test_wrong_type_shows_the_value_given(write) -> None:
    source = CRON_SOURCE.replace(
        'cron:\n    tick: {schedule: "@every 1s"}',
        "mqtt:\n    tick: {url: tcp://x:1883, topic: t, qos: high}",
    )
    (message,) = errors_for(write(BUS, source))
    assert "field 'spec.mqtt.tick.qos'" in message
    assert "valid integer" in message and "'high'" in message


def test_unknown_field_suggests_the_right_name(write) -> None:
    messages = errors_for(write(BUS, CRON_SOURCE, trigger().replace("condition:", "conditon:")))
    assert any(
        "field 'spec.subscribers[0].conditon': unknown field 'conditon'; "
        "did you mean 'condition'?" in m
        for m in messages
    ), messages


def test_unknown_input_in_a_condition(write) -> None:
    (message,) = errors_for(write(BUS, CRON_SOURCE, trigger("tick && tock")))
    assert "field 'spec.subscribers[0].condition'" in message
    assert "unknown input(s) tock" in message and "inputs are: tick" in message


def test_condition_that_does_not_compile_shows_the_position(write) -> None:
    (message,) = errors_for(write(BUS, CRON_SOURCE, trigger("tick && (")))
    assert "does not compile at column 10" in message
    assert message.endswith("    tick && (\n             ^")


def test_condition_that_is_not_boolean(write) -> None:
    (message,) = errors_for(write(BUS, CRON_SOURCE, trigger("tick + 1")))
    assert "cannot be evaluated over boolean inputs" in message


def test_input_name_that_is_not_an_identifier(write) -> None:
    inputs = "event-a: {eventSource: clock, event: tick}"
    (message,) = errors_for(write(BUS, CRON_SOURCE, trigger("event-a", inputs)))
    assert "field 'spec.inputs'" in message
    assert "'event-a' is not an identifier" in message and "'event_a'" in message


@pytest.mark.parametrize(
    ("documents", "field", "problem"),
    [
        (
            (CRON_SOURCE,),
            "spec.eventBus",
            "no EventBus 'default' in namespace 'default' and no ClusterEventBus 'default'",
        ),
        ((BUS, trigger()), "spec.inputs.tick.eventSource", "EventSource 'default/clock' not found"),
        (
            (BUS, CRON_SOURCE, trigger(inputs="tick: {eventSource: clock, event: tock}")),
            "spec.inputs.tick.event",
            "has no event 'tock'; its events are: tick",
        ),
        (
            (BUS.replace("spec: {}", "spec: {component: redis}"),),
            "spec.component",
            "Component 'redis' not found",
        ),
        (
            (
                BUS,
                CRON_SOURCE,
                trigger(extra="    sink: {ref: {apiVersion: v1, kind: Function, name: nope}}"),
            ),
            "spec.subscribers[0].sink.ref",
            "Function 'default/nope' not found",
        ),
    ],
    ids=["eventbus", "eventsource", "event", "component", "function"],
)
def test_reference_to_something_missing(write, documents, field, problem) -> None:
    messages = errors_for(write(*documents))
    assert any(f"field '{field}'" in m and problem in m for m in messages), messages


def test_duplicate_resources_name_both_places(write, tmp_path) -> None:
    first = write(BUS, name="a.yaml")
    second = write(BUS, name="b.yaml")
    with pytest.raises(ManifestErrors) as caught:
        load_catalog([str(first), str(second)], [])
    (message,) = [str(e) for e in caught.value.errors]
    assert "duplicate EventBus 'default/default'" in message
    assert str(first) in message and str(second) in message


def test_bad_cron_schedule_is_caught_at_load(write) -> None:
    source = CRON_SOURCE.replace("@every 1s", "0 25 * * *")
    (message,) = errors_for(write(BUS, source))
    assert "field 'spec.cron.tick'" in message and "25" in message


def test_cli_reports_every_error_without_a_traceback(write, capsys) -> None:
    path = write(
        BUS, CRON_SOURCE, trigger("tick && ("), trigger("nope").replace("name: t1", "name: t2")
    )
    assert main(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert sum(line.startswith("error: ") for line in err.splitlines()) == 2
    assert "2 error(s); nothing was started" in err


def test_cli_rejects_a_missing_path(tmp_path, capsys) -> None:
    assert main(["validate", "-f", str(tmp_path / "nope.yaml")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
