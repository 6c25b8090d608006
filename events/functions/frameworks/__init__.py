"""Calling conventions of the Python function frameworks OpenFunction builds with.

``FunctionSpec.framework`` picks how the target is called:

- ``fnevents`` (the default): ``(event)`` or ``(context, event)``, see
  :mod:`events.functions.loader`;
- ``google-http``: ``(request)``, a Flask request; Flask makes the response; sync only;
- ``google-cloudevent``: ``(cloud_event)``, the 1.x SDK CloudEvent; sync or async;
- ``ofn``: ``(context)``, OpenFunction's ``UserContext``; sync (Flask makes the
  response) or async (``context.get_topic_event()``).

See :mod:`.google` and :mod:`.ofn` for each mapping.

Google's decorators decide, as in Google's framework (decorator, then flag, then
environment): a function decorated ``@functions_framework.http`` or
``@functions_framework.cloud_event`` is called with that signature when the manifest
says ``google-http``, ``google-cloudevent`` or leaves the default ``fnevents`` (whose
own convention such a function cannot follow). With ``ofn`` the manifest decides.
``import functions_framework`` works even though neither framework's package can be
installed next to fnevents (:mod:`.stand_in`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from events.functions.context import Send
from events.functions.frameworks.google import GoogleCloudEvent, GoogleHttp
from events.functions.frameworks.ofn import OfnInvoker
from events.functions.frameworks.stand_in import (
    CLOUDEVENT,
    HTTP,
    ensure_functions_framework,
    registered_signature,
)
from events.functions.loader import Invoker
from events.functions.state import StateStores

INVOKERS: dict[str, type[Invoker]] = {
    "fnevents": Invoker,
    "google-http": GoogleHttp,
    "google-cloudevent": GoogleCloudEvent,
    "ofn": OfnInvoker,
}
_BY_DECORATOR = {HTTP: "google-http", CLOUDEVENT: "google-cloudevent"}

__all__ = ["INVOKERS", "effective_framework", "ensure_functions_framework", "invoker_for"]


def effective_framework(framework: str, handler: Callable[..., Any]) -> str:
    """The framework ``handler`` is called with: a Google decorator overrides the manifest,
    except with ``ofn``."""
    registered = registered_signature(handler)
    if registered in _BY_DECORATOR and framework != "ofn":
        return _BY_DECORATOR[registered]
    return framework


def invoker_for(
    framework: str,
    handler: Callable[..., Any],
    namespace: str,
    name: str,
    outputs: Mapping[str, Send],
    states: StateStores | None = None,
) -> Invoker:
    """The invoker calling ``handler`` the way ``framework`` (or its decorator) says."""
    chosen = INVOKERS[effective_framework(framework, handler)]
    return chosen(handler, namespace, name, outputs, states)
