"""From paths on the command line to a checked catalog: ``-f`` manifests, ``--components``."""

from __future__ import annotations

from collections.abc import Sequence

from events.app.catalog import Catalog
from events.app.checks import checked_catalog
from events.errors import ManifestErrors
from events.manifests.loader import load


def load_catalog(files: Sequence[str], components: Sequence[str]) -> Catalog:
    """Load ``-f`` paths and ``--components`` paths; raise ManifestErrors with every problem."""
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
    if errors:
        raise ManifestErrors(errors)
    return checked_catalog(loaded, [o for o in overrides if o.kind == "Component"])
