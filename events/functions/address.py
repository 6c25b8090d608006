"""The address of a sync Function that runs in another process.

A ``sink.ref`` to a Function resolves to the local server when the Function runs
in this process. Otherwise (``fnevents run --only ...`` elsewhere, or a
Kubernetes Deployment) the address must be stable: the Function's ``url`` when
given (e.g. a Kubernetes Service), else ``http://host:port/`` with its fixed
``port``. A Function with ``port: 0`` picks a free port when it starts, which
no other process can know, so that is refused with the fix.
"""

from __future__ import annotations

from events.errors import FnEventsError
from events.manifests.loader import Loaded

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
