"""Resolving ``secretKeyRef`` without a cluster.

A reference ``{name: redis, key: password}`` is looked up, in order:
1. in a ``v1/Secret`` manifest named ``redis`` in the same namespace (``stringData``
   or base64 ``data``), loaded alongside the other manifests;
2. in the environment variable ``REDIS_PASSWORD`` (name and key upper-cased, every
   character that is not a letter or digit replaced by ``_``).
"""

from __future__ import annotations

import os
import re

from events.app.catalog import Catalog
from events.errors import ManifestError, quote, shorten
from events.manifests.common import SecretKeyRef
from events.manifests.loader import Loaded


def env_name(ref: SecretKeyRef) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", f"{ref.name}_{ref.key}").upper()


def resolve_secret(ref: SecretKeyRef, namespace: str, catalog: Catalog) -> str | None:
    """The value, or None when neither a Secret manifest nor the environment has it; a
    Secret whose value is not text raises ManifestError naming the Secret."""
    secret = catalog.get("Secret", namespace, ref.name)
    if secret is not None:
        try:
            value = secret.resource.value(ref.key)
        except ValueError as exc:
            raise secret.error(str(exc), "data") from None
        if value is not None:
            return value
    return os.environ.get(env_name(ref))


def resolve_component_metadata(component: Loaded, catalog: Catalog) -> dict[str, str]:
    """A component's metadata as ``{name: string value}``, secrets resolved."""
    resolved: dict[str, str] = {}
    for index, item in enumerate(component.resource.spec.metadata):
        if item.secretKeyRef is not None:
            try:
                value = resolve_secret(item.secretKeyRef, component.namespace, catalog)
            except ManifestError as exc:
                ref = item.secretKeyRef
                raise component.error(
                    f"cannot use secret {quote(ref.name)} key {quote(ref.key)}: {exc}",
                    f"spec.metadata[{index}].secretKeyRef",
                ) from None
            if value is None:
                ref = item.secretKeyRef
                raise component.error(
                    f"secret {quote(ref.name)} key {quote(ref.key)} not found: add a v1 Secret "
                    f"manifest named {quote(ref.name)} or set the environment variable "
                    f"{shorten(env_name(ref))}",
                    f"spec.metadata[{index}].secretKeyRef",
                )
            resolved[item.name] = value
        elif item.value is not None:
            resolved[item.name] = _as_text(item.value)
    return resolved


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
