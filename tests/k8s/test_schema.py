"""``fnevents schema``: the committed CRDs and editor schemas are what the models generate,
the CRDs are structural and valid CustomResourceDefinitions, and every manifest we ship
(and a set covering each extension field) passes both schemas as it passes the models."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jsonschema
import kubernetes_validate
import pydantic
import pytest
import yaml
from pydantic import Field

from events.app import schema
from events.cli.main import main
from events.manifests.common import Duration, Metadata, Model
from events.manifests.loader import MANIFEST_SUFFIXES as SUFFIXES
from tests.e2e.processes import FNEVENTS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fnevents"
REGENERATE = "fnevents schema --out charts/fnevents"
BY_KIND = {(k.api_version, k.kind): k for k in schema.KINDS}
#: Kubernetes versions the CRD documents are checked against (kubernetes-validate's oldest
#: and newest bundled schemas that this suite was written with).
KUBERNETES = ("1.30", "1.37")


def editor_validator(kind: schema.Kind) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema.editor_schema(kind))


def crd_schema(kind: schema.Kind) -> dict[str, Any]:
    return schema.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def strict(node: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema as the API server applies it, for jsonschema (which ignores the
    x-kubernetes-* keys and ``nullable``): an object with named fields and no
    preserve-unknown-fields takes no others (the server prunes them, or rejects them under
    strict field validation), and ``nullable`` admits null."""
    out = dict(node)
    if "properties" in out:
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    if "items" in out:
        out["items"] = strict(out["items"])
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


def crd_validator(kind: schema.Kind) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(strict(crd_schema(kind)))


def errors(validator: jsonschema.protocols.Validator, document: Any) -> list[tuple[str, str]]:
    """Every error as (JSON path, message), deepest first: what a user would read."""
    found = sorted(validator.iter_errors(document), key=lambda e: -len(e.absolute_path))
    return [(error.json_path, error.message) for error in found]


# -- the committed files -------------------------------------------------------------------


def first_difference(path: Path, text: str) -> int:
    old, new = path.read_text().splitlines(), text.splitlines()
    pairs = enumerate(zip(old, new, strict=False), 1)
    return next((n for n, (a, b) in pairs if a != b), min(len(old), len(new)) + 1)


def test_the_committed_files_are_what_fnevents_schema_generates() -> None:
    problems = []
    for group, texts in schema.files().items():
        directory = CHART / group
        for name, text in texts.items():
            path = directory / name
            shown = path.relative_to(ROOT)
            if not path.is_file():
                problems.append(f"{shown} is missing")
            elif path.read_text() != text:
                problems.append(f"{shown} differs from line {first_difference(path, text)}")
        here = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        for name in here:
            if name not in texts:
                problems.append(f"{(directory / name).relative_to(ROOT)} is not generated")
    assert not problems, (
        "the CRDs / JSON Schemas are out of date with events/manifests:\n  "
        + "\n  ".join(problems)
        + f"\nrun `{REGENERATE}` and commit the result"
    )


# -- every manifest we ship ----------------------------------------------------------------


def shipped() -> list[tuple[str, dict[str, Any]]]:
    """(file#document, document) for every document of our kinds under examples/ and
    tests/fixtures/openfunction/."""
    found = []
    folders = (ROOT / "examples", ROOT / "tests" / "fixtures" / "openfunction")
    paths = (p for folder in folders for p in folder.rglob("*") if p.suffix in SUFFIXES)
    for path in sorted(paths):
        for number, document in enumerate(yaml.safe_load_all(path.read_text()), 1):
            if isinstance(document, dict) and (
                (document.get("apiVersion"), document.get("kind")) in BY_KIND
            ):
                found.append((f"{path.relative_to(ROOT)}#{number}", document))
    return found


SHIPPED = shipped()


def test_the_shipped_manifests_cover_every_kind_but_clustereventbus() -> None:
    kinds = {document["kind"] for _, document in SHIPPED}
    assert kinds >= {"EventSource", "EventBus", "Trigger", "Function"}, kinds
    assert len(SHIPPED) >= 15


@pytest.mark.parametrize(("where", "document"), SHIPPED, ids=[w for w, _ in SHIPPED])
def test_a_shipped_manifest_passes_its_json_schema_and_its_crd(
    where: str, document: dict[str, Any]
) -> None:
    kind = BY_KIND[document["apiVersion"], document["kind"]]
    kind.model.model_validate(document)  # fnevents reads it ...
    assert errors(editor_validator(kind), document) == []  # ... so must an editor
    assert errors(crd_validator(kind), document) == []  # ... and the API server


#: Every extension field and source kind, written the way a user would on Kubernetes.
COVERING = [
    {
        "apiVersion": "events.openfunction.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "everything", "namespace": "ns", "labels": {"app": "x"}},
        "spec": {
            "eventBus": "default",
            "sink": {
                "ref": {"apiVersion": "fnevents.dev/v1alpha1", "kind": "Function", "name": "f"}
            },
            "deadLetterSink": {"uri": "http://dead.ns.svc/"},
            "delivery": {
                "retry": 5,
                "backoffPolicy": "linear",
                "backoffDelay": "500ms",
                "timeout": 3,
            },
            "kafka": {
                "k": {
                    "brokers": "kafka:9092",
                    "authRequired": True,
                    "topic": "t",
                    "saslUsername": "u",
                    "saslPassword": "p",
                    "saslMechanism": "SCRAM-SHA-512",
                    "tls": True,
                    "initialOffset": "oldest",
                    "sessionTimeout": "PT30S",
                    "maxMessageBytes": 1024,
                    "scaleOption": {
                        "minReplicaCount": 0,
                        "maxReplicaCount": 5,
                        "metadata": {"lagThreshold": "10"},
                        "advanced": {"restoreToOriginalReplicaCount": True},
                        "anyKedaField": {"kept": [1, 2]},
                    },
                }
            },
            "cron": {"c": {"schedule": "@every 1m"}},
            "redis": {"r": {"redisHost": "redis:6379", "redisPassword": "", "stream": "s"}},
            "mqtt": {
                "m": {
                    "url": "tcp://mqtt:1883",
                    "topic": "a/+/b",
                    "qos": 1,
                    "username": "u",
                    "protocolVersion": "3.1.1",
                }
            },
            "http": {"h": {"port": 8080, "path": "/in", "bearerToken": "t", "maxBodyBytes": 10}},
            "build": {"builder": "openfunction/builder-go:latest", "anything": {"goes": True}},
            "logLevel": "2",
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    },
    {
        "apiVersion": "events.openfunction.io/v1alpha1",
        "kind": "ClusterEventBus",
        "metadata": {"name": "default"},
        "spec": {
            "natsStreaming": {
                "natsURL": "nats://nats:4222",
                "natsStreamingClusterID": "stan",
                "subscriptionType": "queue",
                "durableSubscriptionName": "d",
                "maxInFlight": 10,
                "scaleOption": {"lagThreshold": "5", "natsServerMonitoringEndpoint": "nats:8222"},
            }
        },
    },
    {
        "apiVersion": "events.openfunction.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default"},
        "spec": {"component": "pubsub", "sidecar": True},
    },
    {
        "apiVersion": "events.openfunction.io/v1alpha1",
        "kind": "Trigger",
        "metadata": {"name": "t", "uid": "1234", "resourceVersion": "7"},
        "spec": {
            "eventBus": "default",
            "inputs": {
                "a": {
                    "eventSource": "s",
                    "event": "e",
                    "namespace": "other",
                    "filter": {"cel": "true"},
                },
                "b": {"eventSource": "s", "event": "f", "filter": {"prefix": {"type": "dev."}}},
            },
            "subscribers": [
                {
                    "condition": "a && b",
                    "sink": {"uri": "http://f.ns.svc/"},
                    "deadLetterSink": {"uri": "http://dead.ns.svc/"},
                    "deadLetterTopic": "dlt",
                    "delivery": {"retry": 0, "format": "structured"},
                    "filter": {"exact": {"source": "x"}},
                    "replyTopic": "replies",
                    "maxInFlight": 4,
                },
                {"condition": "a", "topic": "out"},
            ],
            "conditionWindow": "1m30s",
            "delivery": {"timeout": "PT10S"},
            "maxDeliveries": 3,
            "orderBy": "partitionkey",
            "conditionStore": "state",
        },
    },
    {
        "apiVersion": "fnevents.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "f"},
        "spec": {
            "source": "f.py",
            "target": "handle",
            "host": "0.0.0.0",
            "port": 8080,
            "input": {"topic": "in", "eventBus": "default"},
            "outputs": {"out": {"topic": "t"}, "kafka": {"component": "kafka", "topic": "k"}},
            "concurrency": 4,
            "maxDeliveries": 2,
        },
    },
]


@pytest.mark.parametrize("document", COVERING, ids=[d["kind"] for d in COVERING])
def test_every_extension_field_passes_the_model_the_json_schema_and_the_crd(
    document: dict[str, Any],
) -> None:
    kind = BY_KIND[document["apiVersion"], document["kind"]]
    kind.model.model_validate(document)
    assert errors(editor_validator(kind), document) == []
    assert errors(crd_validator(kind), document) == []


def test_a_file_of_mixed_kinds_passes_the_combined_schema_document_by_document() -> None:
    validator = jsonschema.Draft7Validator(schema.combined_schema())
    quickstart = list(yaml.safe_load_all((ROOT / "examples/quickstart/eventbus.yaml").read_text()))
    assert [d["kind"] for d in quickstart] == ["Component", "EventBus"]
    for document in [*quickstart, *COVERING]:
        assert errors(validator, document) == []
    bad = {**COVERING[2], "spec": {"component": "pubsub", "sidecar": "yes"}}
    assert errors(validator, bad) == [("$.spec.sidecar", "'yes' is not of type 'boolean'")]


# -- bad manifests ------------------------------------------------------------------------

TRIGGER = COVERING[3]


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with ``value`` at the dotted ``path``."""
    out = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = out
    for name in parents:
        node = node[int(name)] if isinstance(node, list) else node[name]
    node[last] = value
    return out


BAD = [
    (
        changed(TRIGGER, "spec.maxDeliveries", "ten"),
        "$.spec.maxDeliveries",
        "'ten' is not of type 'integer'",
    ),
    (
        changed(TRIGGER, "spec.subscribers.0.bogus", 1),
        "$.spec.subscribers[0]",
        "Additional properties are not allowed ('bogus' was unexpected)",
    ),
    (
        changed(TRIGGER, "spec.subscribers.0.delivery.backoffPolicy", "random"),
        "$.spec.subscribers[0].delivery.backoffPolicy",
        "'random' is not one of ['linear', 'exponential']",
    ),
    (
        changed(COVERING[0], "spec.kafka.k.tls", "maybe"),
        "$.spec.kafka.k.tls",
        "'maybe' is not of type 'boolean'",
    ),
    (
        changed(COVERING[4], "spec.port", 70000),
        "$.spec.port",
        "70000 is greater than the maximum of 65535",
    ),
    (
        {**COVERING[4], "spec": {"source": "f.py"}},
        "$.spec",
        "'target' is a required property",
    ),
]


@pytest.mark.parametrize(("document", "path", "message"), BAD, ids=[p for _, p, _ in BAD])
def test_a_bad_manifest_fails_both_schemas_naming_the_field(
    document: dict[str, Any], path: str, message: str
) -> None:
    kind = BY_KIND[document["apiVersion"], document["kind"]]
    with pytest.raises(pydantic.ValidationError):  # fnevents refuses it too
        kind.model.model_validate(document)
    assert errors(editor_validator(kind), document)[0] == (path, message)
    assert errors(crd_validator(kind), document)[0] == (path, message)


def test_durations_are_int_or_string_in_the_crd_and_number_or_string_for_editors() -> None:
    trigger = BY_KIND["events.openfunction.io/v1alpha1", "Trigger"]
    for value in (30, "30s", "PT1M", "1.5"):
        document = changed(TRIGGER, "spec.conditionWindow", value)
        assert errors(crd_validator(trigger), document) == []
    half = changed(TRIGGER, "spec.conditionWindow", 0.5)
    trigger.model.model_validate(half)  # fnevents reads a fraction of a second ...
    assert errors(editor_validator(trigger), half) == []
    found = errors(crd_validator(trigger), half)  # ... Kubernetes wants '500ms'
    assert found[0][0] == "$.spec.conditionWindow" and "is not valid under any" in found[0][1]

    where = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("x-kubernetes-int-or-string"):
            where.append(path)
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    for kind in schema.KINDS:
        walk(crd_schema(kind), kind.kind)
    delivery = ("backoffDelay", "timeout")
    assert sorted(where) == sorted(
        [
            "EventSource.spec.kafka.*.sessionTimeout",
            *(f"EventSource.spec.delivery.{f}" for f in delivery),
            "Trigger.spec.conditionWindow",
            *(f"Trigger.spec.delivery.{f}" for f in delivery),
            *(f"Trigger.spec.subscribers[].delivery.{f}" for f in delivery),
        ]
    )


def test_descriptions_come_from_the_models() -> None:
    trigger = BY_KIND["events.openfunction.io/v1alpha1", "Trigger"]
    field = trigger.model.model_fields["spec"].annotation.model_fields["conditionWindow"]
    spec = crd_schema(trigger)["properties"]["spec"]["properties"]
    assert spec["conditionWindow"]["description"].startswith(field.description)
    assert 'Default: "60s".' in spec["conditionWindow"]["description"]
    editor = schema.editor_schema(trigger)["properties"]["spec"]["properties"]
    assert editor["conditionWindow"]["description"].startswith(field.description)
    assert editor["conditionWindow"]["default"] == 60.0
    # a model's docstring, one line per paragraph, describes a field of that model's type
    delivery = spec["subscribers"]["items"]["properties"]["delivery"]
    assert delivery["description"] == "extension: retry policy, overriding the Trigger's"
    retry = delivery["properties"]["retry"]
    assert retry["description"] == "Default: 3."


def test_metadata_and_status_are_the_api_servers_and_kept() -> None:
    for kind in schema.KINDS:
        root = crd_schema(kind)
        assert root["properties"]["metadata"] == {"type": "object"}
        assert root["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
        assert "subresources" not in schema.crd(kind)["spec"]["versions"][0]
    event_source = BY_KIND["events.openfunction.io/v1alpha1", "EventSource"]
    document = changed(COVERING[0], "metadata.creationTimestamp", "2026-01-01T00:00:00Z")
    assert errors(crd_validator(event_source), document) == []
    assert errors(crd_validator(event_source), {**document, "bogus": 1}) == [
        ("$", "Additional properties are not allowed ('bogus' was unexpected)")
    ]


# -- structural ---------------------------------------------------------------------------

_JUNCTORS = ("anyOf", "allOf", "oneOf", "not")
_NOT_IN_JUNCTORS = ("type", "description", "default", "nullable", "additionalProperties")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_problems(node: Any, path: str = "", root: bool = True) -> list[str]:
    """Why a CRD schema is not structural (Kubernetes' apiextensions rules, the subset a
    generator can break), as 'path: problem'; empty when it is."""
    if not isinstance(node, dict):
        return [f"{path}: not a schema"]
    problems = [
        f"{path}: {key}" for key in ("$ref", "$defs", "definitions", "const") if key in node
    ]
    typed = node.get("type") or node.get("x-kubernetes-int-or-string")
    if not (typed or node.get("x-kubernetes-preserve-unknown-fields")):
        problems.append(f"{path}: no type")
    if isinstance(node.get("type"), list):
        problems.append(f"{path}: more than one type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties")
    if isinstance(node.get("additionalProperties"), bool):
        problems.append(f"{path}: additionalProperties is not a schema")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: an array without items")
    for junctor in _JUNCTORS:
        if junctor not in node:
            continue
        if node.get("x-kubernetes-int-or-string") and node[junctor] == _INT_OR_STRING:
            continue
        branches = node[junctor] if isinstance(node[junctor], list) else [node[junctor]]
        for branch in branches:
            for key in (*_NOT_IN_JUNCTORS, *(k for k in branch if k.startswith("x-kubernetes"))):
                if key in branch:
                    problems.append(f"{path}.{junctor}: {key}")
    if root:
        if node.get("type") != "object" or "additionalProperties" in node:
            problems.append(f"{path}: the root must be an object without additionalProperties")
        metadata = node.get("properties", {}).get("metadata")
        if metadata is not None and metadata != {"type": "object"}:
            problems.append(f"{path}.metadata: more than type object")
    for name, sub in node.get("properties", {}).items():
        problems.extend(structural_problems(sub, f"{path}.{name}", root=False))
    if isinstance(node.get("additionalProperties"), dict):
        problems.extend(structural_problems(node["additionalProperties"], f"{path}.*", False))
    if "items" in node:
        problems.extend(structural_problems(node["items"], f"{path}[]", root=False))
    return problems


@pytest.mark.parametrize("kind", schema.KINDS, ids=[k.kind for k in schema.KINDS])
def test_the_crd_schema_is_structural(kind: schema.Kind) -> None:
    assert structural_problems(crd_schema(kind)) == []
    jsonschema.Draft4Validator.check_schema(crd_schema(kind))


def test_the_structural_check_finds_each_problem() -> None:
    bad = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "untyped": {"description": "no type"},
            "ref": {"$ref": "#/definitions/X"},
            "both": {"type": "object", "properties": {}, "additionalProperties": False},
            "list": {"type": "array"},
            "union": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "kind": {"type": "string", "const": "X"},
        },
    }
    assert sorted(structural_problems(bad)) == sorted(
        [
            ": the root must be an object without additionalProperties",
            ": properties and additionalProperties",
            ".metadata: more than type object",
            ".untyped: no type",
            ".ref: $ref",
            ".ref: no type",
            ".both: properties and additionalProperties",
            ".both: additionalProperties is not a schema",
            ".list: an array without items",
            ".union: no type",
            ".union.anyOf: type",
            ".union.anyOf: type",
            ".kind: const",
        ]
    )


@pytest.mark.parametrize("version", KUBERNETES)
def test_the_crd_files_are_valid_custom_resource_definitions(version: str) -> None:
    for name, text in schema.files()["crds"].items():
        document = yaml.safe_load(text)
        assert kubernetes_validate.validate(document, version, strict=True) == version, name


def test_kubernetes_validate_would_catch_a_keyword_a_crd_does_not_know() -> None:
    """The check above can fail: pydantic's own 'gt' (which a CRD does not have) where
    the generator might leave it."""
    document = yaml.safe_load(schema.files()["crds"]["triggers.events.openfunction.io.yaml"])
    root = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root["properties"]["spec"]["properties"]["maxDeliveries"]["gt"] = 0
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(document, KUBERNETES[0], strict=True)
    assert "'gt' was unexpected" in caught.value.message


def test_the_json_schemas_are_valid_draft_07() -> None:
    for name, text in schema.files()["schemas"].items():
        document = json.loads(text)
        assert document["$schema"] == "http://json-schema.org/draft-07/schema#", name
        jsonschema.Draft7Validator.check_schema(document)
    for kind in schema.KINDS:
        properties = schema.editor_schema(kind)["properties"]
        assert properties["apiVersion"]["const"] == kind.api_version
        assert properties["kind"]["const"] == kind.kind


# -- the translation of each construct ----------------------------------------------------


class Part(Model):
    """A part.

    Its second paragraph."""

    size: int = Field(ge=1, description="how big")


class ProbeSpec(Model):
    wait: Duration = 5.0
    maybe: Duration | None = Field(default=None, gt=0, description="sometimes")
    free: dict[str, Any] = Field(default_factory=dict)
    anything: Any = None
    part: Part | None = None
    parts: list[Part] = Field(default_factory=list, min_length=1)
    names: dict[str, str] = Field(default_factory=dict)
    mode: Literal["x", "y"] | None = None
    link: pydantic.AnyUrl | None = None


class Open(Model):
    model_config = Model.model_config | {"extra": "allow"}

    known: str = "k"


class Probe(Model):
    model_config = Model.model_config | {"extra": "ignore"}

    apiVersion: Literal["probe.dev/v1"]
    kind: Literal["Probe"]
    metadata: Metadata
    spec: ProbeSpec
    extra: Open | None = None


def test_each_construct_has_its_structural_form() -> None:
    root = schema.openapi_schema(Probe, "A probe.")
    assert structural_problems(root) == []
    spec = root["properties"]["spec"]["properties"]
    hint = f"A duration: {schema.FORMAT_HINT}, or a number of seconds."
    int_or_string = {"x-kubernetes-int-or-string": True, "anyOf": _INT_OR_STRING}
    assert spec["wait"] == {"description": f'{hint} Default: "5s".', **int_or_string}
    assert spec["maybe"] == {
        "description": f"sometimes. {hint}",
        "nullable": True,
        **int_or_string,
        "exclusiveMinimum": True,
        "minimum": 0,
    }
    assert spec["free"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert spec["anything"] == {"x-kubernetes-preserve-unknown-fields": True}
    part = {
        "type": "object",
        "properties": {
            "size": {"description": "how big", "type": "integer", "minimum": 1},
        },
        "required": ["size"],
    }
    assert spec["part"] == {
        "description": "A part.\n\nIts second paragraph.",
        "nullable": True,
        **part,
    }
    assert spec["parts"] == {
        "type": "array",
        "items": {"description": "A part.\n\nIts second paragraph.", **part},
        "minItems": 1,
    }
    assert spec["names"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert spec["mode"] == {"type": "string", "enum": ["x", "y"]}  # null is pruned instead
    assert spec["link"] == {"type": "string", "nullable": True, "format": "uri", "minLength": 1}
    assert root["properties"]["extra"] == {
        "type": "object",
        "nullable": True,
        "properties": {"known": {"description": 'Default: "k".', "type": "string"}},
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert root["required"] == ["spec"]


class Tagged(Model):
    tags: set[str]


class Either(Model):
    value: int | str


class Node(Model):
    children: list[Node] = Field(default_factory=list)


class Opaque(Model):
    value: Callable[[], None]


class Nothing(Model):
    value: None = None


class Odd(Model):
    value: str = Field(json_schema_extra={"format": "ipv5"})


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (Tagged, "Wrapped.spec.tags: ['uniqueItems'] has no structural CRD form"),
        (Either, "Wrapped.spec.value: a union of 2 types has no structural form"),
        (Node, "Node contains itself; a CRD cannot describe a recursive type"),
        (Odd, "Wrapped.spec.value: the API server does not know the format 'ipv5'"),
        (Nothing, 'Wrapped.spec.value: type "null" has no structural form'),
        (Opaque, "Wrapped: Cannot generate a JsonSchema for core_schema.CallableSchema"),
    ],
)
def test_a_construct_without_a_structural_form_is_an_error_naming_the_field(
    spec: type[Model], problem: str
) -> None:
    wrapped = pydantic.create_model(
        "Wrapped",
        __base__=Model,
        apiVersion=(Literal["probe.dev/v1"], ...),
        kind=(Literal["Wrapped"], ...),
        metadata=(Metadata, ...),
        spec=(spec, ...),
    )
    with pytest.raises(schema.SchemaError) as caught:
        schema.openapi_schema(wrapped, "")
    assert str(caught.value) == problem


# -- the command -------------------------------------------------------------------------


def test_fnevents_schema_needs_a_destination(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schema"])
    assert exited.value.code == 2
    assert "say where to write: --out DIR, --crds DIR, --json-schema DIR" in capsys.readouterr().err


def test_check_reports_drift_and_writing_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out
    assert "5 kinds: 11 written" in written
    assert "yaml-language-server: $schema=" in written
    assert main(["schema", "--out", str(tmp_path), "--check"]) == 0
    assert "5 kinds: 11 unchanged" in capsys.readouterr().out

    crds, schemas = tmp_path / "crds", tmp_path / "schemas"
    (crds / "triggers.events.openfunction.io.yaml").write_text("edited\n")
    (schemas / "function_v1alpha1.json").unlink()
    (schemas / "gone_v1alpha1.json").write_text(json.dumps({"$comment": schema.GENERATED}))
    (schemas / "mine.json").write_text("{}")  # not ours: left alone
    assert main(["schema", "--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"differs    {crds / 'triggers.events.openfunction.io.yaml'}" in out
    assert f"missing    {schemas / 'function_v1alpha1.json'}" in out
    assert f"stale      {schemas / 'gone_v1alpha1.json'}" in out
    assert "mine.json" not in out
    assert f"out of date: run `fnevents schema --out {tmp_path}`" in out
    assert (crds / "triggers.events.openfunction.io.yaml").read_text() == "edited\n"

    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert "2 written, 9 unchanged, 1 removed" in capsys.readouterr().out
    assert not (schemas / "gone_v1alpha1.json").exists()
    assert (schemas / "mine.json").read_text() == "{}"
    assert main(["schema", "--out", str(tmp_path), "--check"]) == 0


def test_an_unwritable_destination_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    assert main(["schema", "--crds", str(tmp_path / "file")]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ") and str(tmp_path / "file") in err and len(err.splitlines()) == 1
    )


def test_the_console_script_writes_only_what_is_asked(tmp_path: Path) -> None:
    done = subprocess.run(
        [*FNEVENTS, "schema", "--crds", str(tmp_path / "crds")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crds"]
    assert sorted(p.name for p in (tmp_path / "crds").iterdir()) == sorted(
        k.crd_file for k in schema.KINDS
    )
    assert done.stdout.splitlines()[-1] == "5 kinds: 5 written"
