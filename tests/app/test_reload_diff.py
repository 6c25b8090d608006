"""What a reload restarts: the per-role footprints of two catalogs, compared
(:mod:`events.app.reload`), and the digest the file watch compares."""

from __future__ import annotations

import os
from pathlib import Path

from events.app.catalog import Catalog
from events.app.load import load_catalog
from events.app.reload import RoleDiff, bus_identities, diff_roles, footprints, snapshot
from events.app.roles import Roles

SOURCE = ("EventSource", "default", "clock")
TRIGGER = ("Trigger", "default", "t1")
FUNCTION = ("Function", "default", "fn")


def redis_bus(host: str = "localhost:6379", secret: str = "s3cret") -> str:
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: redis}}
stringData: {{password: {secret}}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: eventbus}}
spec:
  type: pubsub.redis
  metadata:
    - {{name: redisHost, value: "{host}"}}
    - {{name: redisPassword, secretKeyRef: {{name: redis, key: password}}}}
---
apiVersion: events.openfunction.io/v1alpha1
kind: EventBus
metadata: {{name: default}}
spec: {{component: eventbus}}
"""


def cron(schedule: str = "@every 1h") -> str:
    return f"""
apiVersion: events.openfunction.io/v1alpha1
kind: EventSource
metadata: {{name: clock}}
spec:
  eventBus: default
  cron: {{tick: {{schedule: "{schedule}"}}}}
"""


def trigger(sink: str = "{uri: 'http://127.0.0.1:9001/'}", name: str = "t1") -> str:
    return f"""
apiVersion: events.openfunction.io/v1alpha1
kind: Trigger
metadata: {{name: {name}}}
spec:
  eventBus: default
  inputs: {{tick: {{eventSource: clock, event: tick}}}}
  subscribers:
    - condition: tick
      sink: {sink}
"""


REF_SINK = "{ref: {apiVersion: core.openfunction.io/v1beta2, kind: Function, name: fn}}"


def function(target: str = "handle", extra: str = "") -> str:
    return f"""
apiVersion: fnevents.dev/v1alpha1
kind: Function
metadata: {{name: fn}}
spec:
  source: functions.py
  target: {target}
{extra}"""


def catalog(directory: Path, *documents: str) -> Catalog:
    """The catalog of ``documents`` written as one file in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    code = "def handle(event):\n    return None\n\ndef other(event):\n    return None\n"
    (directory / "functions.py").write_text(code)
    (directory / "app.yaml").write_text("---".join(documents))
    return load_catalog([str(directory)], [])


def diff(tmp_path: Path, before: list[str], after: list[str], only: tuple[str, ...] = ()):
    """The diff of a reload after ``before`` was rewritten as ``after`` in the same place."""
    old = catalog(tmp_path, *before)
    new = catalog(tmp_path, *after)
    old_roles, new_roles = Roles.parse(list(only), old), Roles.parse(list(only), new)
    return diff_roles(footprints(old, old_roles), footprints(new, new_roles))


def test_the_same_manifests_change_nothing(tmp_path) -> None:
    documents = [redis_bus(), cron(), trigger(REF_SINK), function()]
    result = diff(tmp_path, documents, documents)
    assert result.empty
    assert set(result.unchanged) == {SOURCE, TRIGGER, FUNCTION}


def test_where_a_resource_is_written_does_not_matter(tmp_path) -> None:
    result = diff(tmp_path, [redis_bus(), cron(), trigger()], [trigger(), redis_bus(), cron()])
    assert result.empty and len(result.unchanged) == 2


def test_a_new_sink_restarts_only_its_trigger(tmp_path) -> None:
    before = [redis_bus(), cron(), trigger()]
    after = [redis_bus(), cron(), trigger("{uri: 'http://127.0.0.1:9002/'}")]
    assert diff(tmp_path, before, after) == RoleDiff(changed=(TRIGGER,), unchanged=(SOURCE,))


def test_added_and_removed_roles(tmp_path) -> None:
    before = [redis_bus(), cron(), trigger()]
    after = [redis_bus(), cron(), trigger(name="t2")]
    result = diff(tmp_path, before, after)
    assert result.added == (("Trigger", "default", "t2"),)
    assert result.removed == (TRIGGER,)
    assert result.changed == () and result.unchanged == (SOURCE,)
    assert result.summary() == (
        "started trigger/default/t2; stopped trigger/default/t1; 1 unchanged"
    )


def test_a_bus_component_change_restarts_every_user_of_the_bus(tmp_path) -> None:
    before = [redis_bus(), cron(), trigger(REF_SINK), function()]
    after = [redis_bus(host="other:6379"), cron(), trigger(REF_SINK), function()]
    result = diff(tmp_path, before, after)
    assert set(result.changed) == {SOURCE, TRIGGER}
    assert result.unchanged == (FUNCTION,), "a sync function without outputs has no bus"


def test_a_secret_the_bus_uses_is_a_dependency(tmp_path) -> None:
    before = [redis_bus(), cron(), trigger()]
    after = [redis_bus(secret="rotated"), cron(), trigger()]
    assert set(diff(tmp_path, before, after).changed) == {SOURCE, TRIGGER}


def test_bus_identity_follows_its_settings(tmp_path) -> None:
    def identities(*documents: str) -> dict[str, str]:
        return bus_identities(catalog(tmp_path, *documents), Roles())

    same = identities(redis_bus(), cron())
    assert identities(redis_bus(), cron("@every 2h")) == same
    moved = identities(redis_bus(host="other:6379"), cron())
    assert moved.keys() == same.keys() and moved != same, "same key, new settings"


def test_a_function_served_here_restarts_with_the_triggers_sinking_to_it(tmp_path) -> None:
    """A restarted sync function may move (port 0) and is away while it restarts, so its
    senders stop before it and start after it."""
    before = [redis_bus(), cron(), trigger(REF_SINK), function()]
    after = [redis_bus(), cron(), trigger(REF_SINK), function(target="other")]
    result = diff(tmp_path, before, after)
    assert set(result.changed) == {FUNCTION, TRIGGER}
    assert result.unchanged == (SOURCE,)


def test_a_function_elsewhere_matters_by_its_address_only(tmp_path) -> None:
    fixed = "  port: 8099\n"
    before = [redis_bus(), cron(), trigger(REF_SINK), function(extra=fixed)]
    new_code = [redis_bus(), cron(), trigger(REF_SINK), function("other", extra=fixed)]
    new_port = [redis_bus(), cron(), trigger(REF_SINK), function(extra="  port: 8100\n")]
    only = ("trigger/t1",)
    assert diff(tmp_path / "code", before, new_code, only) == RoleDiff(unchanged=(TRIGGER,))
    assert diff(tmp_path / "port", before, new_port, only) == RoleDiff(changed=(TRIGGER,))


def test_only_is_applied_to_the_new_manifests(tmp_path) -> None:
    before = [redis_bus(), cron(), trigger()]
    after = [redis_bus(host="other:6379"), cron(), trigger()]
    result = diff(tmp_path, before, after, only=("source/clock",))
    assert result == RoleDiff(changed=(SOURCE,))


def test_the_digest_sees_a_configmap_symlink_swap(tmp_path) -> None:
    """A ConfigMap volume: ``app.yaml -> ..data/app.yaml``, ``..data -> ..<timestamp>``;
    an update writes a new directory and swaps ``..data``, no named path changes."""
    mount = tmp_path / "mount"
    for version, text in (("..v1", "a: 1\n"), ("..v2", "a: 2\n")):
        (mount / version).mkdir(parents=True)
        (mount / version / "app.yaml").write_text(text)
    (mount / "..data").symlink_to("..v1")
    (mount / "app.yaml").symlink_to("..data/app.yaml")
    named = [str(mount / "app.yaml")]
    first = snapshot(named)
    (mount / "..swap").symlink_to("..v2")
    os.replace(mount / "..swap", mount / "..data")  # atomic, as the kubelet does it
    assert snapshot(named) != first


def test_the_digest_is_content_not_time(tmp_path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text("a: 1\n")
    first = snapshot([str(tmp_path)])
    os.utime(manifest, (1, 1))
    assert snapshot([str(tmp_path)]) == first
    (tmp_path / "more.yml").write_text("b: 1\n")
    assert snapshot([str(tmp_path)]) != first
    (tmp_path / "more.yml").unlink()
    manifest.unlink()
    assert snapshot([str(tmp_path)]) != first, "a directory left empty is a change too"
