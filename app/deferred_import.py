"""Modules registered at start-up but run only when something first uses them.

Libraries the service must use import others at module level for features it
does not use (oslo.policy: PyYAML, for YAML policy files; oslo.config: netaddr
and rfc3986, for address and URI options): each would cost every worker its code
and classes (~0.5-0.9 MB). :func:`defer` puts a stand-in module in
``sys.modules`` (with the real module's spec, file and package path, so imports
of it and of its submodules work as usual); the first attribute asked of it that
it lacks runs the module's own body in place, so every name becomes the real one
from then on. Nothing changes but when the module's body runs.

:func:`keep_out` goes further for a module nothing the service runs needs, but
that a library imports just to look for it: FastAPI imports pydantic's v1
compatibility layer (~1.5 MB per worker) to check every route parameter
against v1 models, and reads an ImportError as "none can be in use"."""

import importlib.util
import sys
from types import ModuleType
from typing import Any


def defer(name: str) -> None:
    """Register ``name`` to run at its first use (no-op when already imported)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:  # not installed: importing it fails later, as usual
        return
    module = importlib.util.module_from_spec(spec)

    def complete(attribute: str) -> Any:
        del module.__dict__["__getattr__"]
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            sys.modules.pop(name, None)  # as a failed import: the next one tries again
            raise
        return getattr(module, attribute)

    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[name] = module


def keep_out(name: str) -> None:
    """Make importing ``name`` fail as if it were not installed (no-op when it is
    already imported: then something uses it)."""
    sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: import refused


def is_loaded(module: ModuleType) -> bool:
    """Whether a deferred module's body has run (for tests)."""
    return "__getattr__" not in module.__dict__
