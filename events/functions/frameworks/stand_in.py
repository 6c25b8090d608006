"""``import functions_framework`` for functions written for Google's or OpenFunction's
Python frameworks, when no working package of that name is installed.

Both frameworks install a top-level package named ``functions_framework``, and
neither installs next to fnevents: Google's ``functions-framework`` 3.x pins
``cloudevents<=1.12`` while fnevents uses the ``cloudevents`` 2.x API, and
``ofn-functions-framework`` 0.2 pins ``aiohttp==3.8.5``, ``flask<3`` and
``grpcio==1.54.2``. Their code is not needed to run a function: what a function's
module touches of them is

- Google's ``@functions_framework.http`` and ``@functions_framework.cloud_event``
  decorators, which record the signature type and return the function unchanged;
- ``from functions_framework.context.user_context import UserContext``, the type
  OpenFunction's examples annotate ``context`` with.

So, when ``import functions_framework`` fails, this module puts a small stand-in
under that name offering exactly those (``UserContext`` is fnevents' own OpenFunction
context). When the real package imports, it is used, and its decorator registry
is read too. Other names (``@typed``, ``@aio``, ``errorhandler``) are not offered:
importing them fails with Python's own message.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

from events.functions.frameworks.ofn import OfnContext

NAME = "functions_framework"
#: the attribute the stand-in's decorators set on the function they return
SIGNATURE_ATTRIBUTE = "__functions_framework_signature__"
HTTP, CLOUDEVENT = "http", "cloudevent"


def ensure_functions_framework() -> None:
    """Make ``import functions_framework`` work in this process (see the module docstring)."""
    if NAME in sys.modules:
        return
    try:
        importlib.import_module(NAME)
    except ImportError:
        _install()


def registered_signature(handler: Callable[..., Any]) -> str | None:
    """``http`` or ``cloudevent`` when a decorator registered ``handler``, else None."""
    marked = getattr(handler, SIGNATURE_ATTRIBUTE, None)
    if marked is not None:
        return marked
    registry = getattr(sys.modules.get(f"{NAME}._function_registry"), "REGISTRY_MAP", None)
    if isinstance(registry, dict) and getattr(sys.modules.get(NAME), "__fnevents__", None) is None:
        return registry.get(getattr(handler, "__name__", ""))
    return None


def _register(signature: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        setattr(wrapper, SIGNATURE_ATTRIBUTE, signature)
        return wrapper

    return decorator


def _install() -> None:
    root = types.ModuleType(NAME, "fnevents' stand-in for functions_framework (see its host)")
    root.__path__ = []  # a package, so its submodules below import
    root.__fnevents__ = True
    root.http = _register(HTTP)
    root.cloud_event = _register(CLOUDEVENT)
    context = types.ModuleType(f"{NAME}.context")
    context.__path__ = []
    user_context = types.ModuleType(f"{NAME}.context.user_context")
    user_context.UserContext = OfnContext
    root.context = context
    context.user_context = user_context
    for module in (root, context, user_context):
        sys.modules[module.__name__] = module
