"""The address of a sync Function that runs in another process.

A ``sink.ref`` to a Function resolves to the local server when the Function runs
in this process. Otherwise (``fnevents run --only ...`` elsewhere, or a
Kubernetes Deployment) the address must be stable: the Function's ``url`` when
given (e.g. a Kubernetes Service), else ``http://host:port/`` with its fixed
``port``. A Function with ``port: 0`` picks a free port when it starts, which
no other process can know, so that is refused with the fix.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from events.errors import FnEventsError
from events.manifests.common import SinkSpec
from events.manifests.loader import Loaded

if TYPE_CHECKING:
    from events.app.catalog import Catalog

_ANY_ADDRESS = ("", "0.0.0.0", "::")


class FunctionAddressError(FnEventsError, ValueError):
    """A sink refers to a Function that has no address reachable from this process."""


def remote_url(function: Loaded) -> str:
    """The stable URL of ``function``; raises FunctionAddressError naming the fix."""
    spec = function.resource.spec
    where = f"Function {function.namespace}/{function.name} ({function.origin})"
    if spec.input is not None:
        raise FunctionAddressError(
            f"{where} is an async function (it consumes the topic '{spec.input.topic}'), so "
            "it has no HTTP address: deliver to it with a subscriber 'topic' instead of 'sink'"
        )
    if spec.url:
        return spec.url
    if spec.port == 0:
        raise FunctionAddressError(
            f"{where} does not run in this process and has port 0 (a free port picked when it "
            "starts), so this process cannot know its address: give it a fixed 'port' "
            "(and 'host'), or a 'url' such as a Kubernetes Service address"
        )
    host = "127.0.0.1" if spec.host in _ANY_ADDRESS else spec.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{spec.port}/"


def check_sinks(items: Iterable[Loaded], catalog: Catalog, runs_here: Container[Loaded]) -> None:
    """Before anything starts: every ``sink.ref`` of ``items`` to a Function that this
    process does not serve must have a stable address (raises FunctionAddressError)."""
    for item in items:
        for sink in _sinks(item.resource.spec):
            if sink is None or sink.uri or sink.ref is None:
                continue
            function = catalog.find_function(sink.ref, item.namespace)
            if function is None:
                continue  # a load error already
            if function not in runs_here or function.resource.spec.input is not None:
                remote_url(function)


def _sinks(spec: Any) -> Iterator[SinkSpec | None]:
    yield getattr(spec, "sink", None)
    yield getattr(spec, "deadLetterSink", None)
    for subscriber in getattr(spec, "subscribers", ()):
        yield subscriber.sink
        yield subscriber.deadLetterSink
