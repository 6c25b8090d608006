"""The compiled core of the ``common-expression-language`` package, imported alone.

``import cel`` also imports the package's interactive shell (prompt_toolkit and
rich), which costs 250-400 ms of startup on this class of machine -- a quarter of
``fnevents run``'s time to first delivery. The compiled extension ``cel.cel`` has
everything we use (``compile``, ``Program``, ``Context``), so we load it under a
bare package placeholder and then drop the placeholder, leaving a later full
``import cel`` to work as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def _load_core() -> types.ModuleType:
    if "cel.cel" in sys.modules:
        return sys.modules["cel.cel"]
    if "cel" in sys.modules:
        return importlib.import_module("cel.cel")
    spec = importlib.util.find_spec("cel")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'common-expression-language' package is not installed")
    placeholder = types.ModuleType("cel")
    placeholder.__path__ = list(spec.submodule_search_locations)
    sys.modules["cel"] = placeholder
    try:
        return importlib.import_module("cel.cel")
    finally:
        del sys.modules["cel"]


_core = _load_core()
compile = _core.compile
Program = _core.Program
