"""``fnevents render``: the Kubernetes objects that run the manifests, one Deployment per
role, as multi-document YAML on stdout; or, with ``--helm-values``, the chart's values.

Manifests are loaded and checked as ``fnevents validate`` does, so a mistake is the
same message naming the file, document and field. Warnings (no ScaledObject and why,
condition state shared by several replicas without a ``conditionStore``, a secret KEDA
needs) go to stderr, so stdout stays valid YAML to pipe into ``kubectl apply -f -``.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import yaml

from events.app.load import load_catalog
from events.app.render import dapr
from events.errors import FnEventsError, ManifestErrors

if TYPE_CHECKING:
    from events.app.render.model import Rendering

IMAGE_REPOSITORY = "ghcr.io/fnevents/fnevents"


def default_image() -> str:
    try:
        return f"{IMAGE_REPOSITORY}:{version('fnevents')}"
    except PackageNotFoundError:  # pragma: no cover -- run from a source tree
        return f"{IMAGE_REPOSITORY}:latest"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "render",
        help="print the Kubernetes objects (or Helm values) that run the manifests",
        description="Print, as multi-document YAML, the Kubernetes objects that run these "
        "manifests with one Deployment per role (each EventSource, Trigger and Function, "
        "running `fnevents run --only ROLE`): a ConfigMap holding the manifests (v1 Secrets "
        "in a Secret), Deployments with probes and a restricted securityContext, Services "
        "for sync Functions and HTTP ingest, PodDisruptionBudgets, KEDA ScaledObjects on "
        "each consuming role's own backlog, and Dapr Components or the shared Dapr proxy. "
        "The roles must share a broker: the embedded in-memory bus is refused.",
        epilog="examples:\n"
        "  fnevents render -f examples/vehicle-telemetry --components components/redis.yaml"
        " | kubectl apply -f -\n"
        "  fnevents render -f manifests/ --namespace events --helm-values > values.yaml\n"
        "  helm install events charts/fnevents -f values.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f",
        "--file",
        action="append",
        required=True,
        metavar="PATH",
        help="a manifest file or directory (repeatable), as for `fnevents run`",
    )
    parser.add_argument(
        "--components",
        action="append",
        default=[],
        metavar="PATH",
        help="Dapr Component files or directories (repeatable) replacing those of the same "
        "name, as for `fnevents run`: this is how to pick the broker",
    )
    parser.add_argument(
        "--image", default=default_image(), help="the fnevents image (default %(default)s)"
    )
    parser.add_argument(
        "--namespace",
        default="default",
        metavar="NS",
        help="the Kubernetes namespace of every object; Service URLs are built with it "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--helm-values",
        action="store_true",
        help="print a values file for charts/fnevents (per-role mode) instead of objects",
    )
    parser.add_argument(
        "--dapr-mode",
        choices=dapr.MODES,
        default="auto",
        help="for EventBuses with sidecar: true: a Dapr sidecar per pod, or one shared Dapr "
        "proxy (OpenFunction's standalone mode); auto follows the EventBus annotation "
        f"{dapr.SERVICE_MODE} (default auto)",
    )
    parser.add_argument(
        "--no-keda",
        dest="keda",
        action="store_false",
        help="no ScaledObjects: fixed replicas (minReplicaCount)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from events.app.render import objects, values  # not at the top: see render()

    try:
        rendering = render(args)
    except ManifestErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(exc.errors)} error(s); nothing was rendered", file=sys.stderr)
        return 1
    except FnEventsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in dict.fromkeys(rendering.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    if args.helm_values:
        sys.stdout.write(values.HEADER + dump([values.helm_values(rendering)], start=False))
    else:
        sys.stdout.write(dump(objects.render_objects(rendering)))
    return 0


def render(args: argparse.Namespace) -> Rendering:
    """The plans for ``args``; ManifestErrors or RenderError when they cannot be made."""
    # Imported here, not at the top: every command's parser is built from this module,
    # and ``fnevents run`` should not pay for loading the renderer.
    from events.app.render import files, model

    catalog = load_catalog(args.file, args.components)
    options = model.Options(args.namespace, args.image, args.dapr_mode, args.keda)
    found = files.collect(args.file, args.components, catalog, args.namespace)
    return model.plan_rendering(catalog, found, options)


class _Dumper(yaml.SafeDumper):
    """Block style; a multi-line string (a manifest file) as a literal block."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def dump(documents: list[dict[str, Any]], start: bool = True) -> str:
    """YAML documents, each after ``---`` when ``start`` (a values file has one, bare)."""
    return yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, width=100, explicit_start=start
    )
