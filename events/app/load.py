"""From paths on the command line to a checked catalog: ``-f`` manifests, ``--components``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from events.app.catalog import Catalog
from events.app.checks import checked_catalog
from events.app.ofn_functions import expand_functions
from events.errors import ManifestErrors
from events.manifests.loader import load


def load_catalog(
    files: Sequence[str], components: Sequence[str], sources: Mapping[str, str] | None = None
) -> Catalog:
    """Load ``-f`` paths and ``--components`` paths; raise ManifestErrors with every problem.
    OpenFunction Functions become what fnevents runs (``sources``: ``--source NAME=PATH``)."""
    loaded, errors = load(files)
    overrides, override_errors = load(components)
    errors += override_errors
    for item in overrides:
        if item.kind != "Component":
            errors.append(
                item.error(
                    "--components accepts only Dapr Components (dapr.io/v1alpha1); "
                    "pass other manifests with -f"
                )
            )
    overrides = [o for o in overrides if o.kind == "Component"]
    loaded, warnings, expand_errors = expand_functions(loaded, overrides, sources or {})
    errors += expand_errors
    if errors:
        raise ManifestErrors(errors)
    catalog = checked_catalog(loaded, overrides)
    catalog.warnings[:0] = warnings
    return catalog
