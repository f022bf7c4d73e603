"""Import SQLAlchemy's asyncio engine without its ORM session.

``sqlalchemy.ext.asyncio``'s package module imports ``AsyncSession`` and with it
the whole ORM (about 7 MB of code and classes in every worker), which this
service never uses: it works with Core connections only. Importing
``sqlalchemy.ext.asyncio.engine`` alone is not possible the ordinary way, since
Python runs the package module first. ``install`` (from ``app/__init__.py``,
before any module of the app imports SQLAlchemy's asyncio names) registers the
package module with the engine and result names already in it; the first
request for any other name (``AsyncSession``, say, by a tool or a test) runs the
package's own module body in place, so every name stays available.
"""

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

PACKAGE = "sqlalchemy.ext.asyncio"

# Names the package module takes from these two submodules (all that the app uses).
_EAGER = {
    "engine": (
        "AsyncConnection",
        "AsyncEngine",
        "AsyncTransaction",
        "async_engine_from_config",
        "create_async_engine",
        "create_async_pool_from_url",
    ),
    "result": ("AsyncMappingResult", "AsyncResult", "AsyncScalarResult", "AsyncTupleResult"),
}


def install() -> None:
    """Register the engine-only package module, unless it is already imported."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:  # pragma: no cover (SQLAlchemy is a dependency)
        return
    module = importlib.util.module_from_spec(spec)

    def complete(name: str) -> Any:
        if name.startswith("__"):  # probes (__all__, __wrapped__...): the body sets none
            raise AttributeError(name)
        # Run the real package body once, in place: it re-imports the submodules
        # already loaded and adds the ORM session names.
        del module.__dict__["__getattr__"]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return getattr(module, name)

    sys.modules[PACKAGE] = module
    try:
        for submodule, names in _EAGER.items():
            loaded: ModuleType = importlib.import_module(f"{PACKAGE}.{submodule}")
            for name in names:
                setattr(module, name, getattr(loaded, name))
        # What the package body does last: SQLAlchemy's greenlet bridge.
        from sqlalchemy.util import concurrency

        concurrency._concurrency_shim._initialize()
    except Exception:
        # A SQLAlchemy laid out otherwise than this expects (another release):
        # the ordinary import, ORM and all, instead of a failed start.
        del sys.modules[PACKAGE]
        return
    # Only now: the submodules' own relative imports must not complete the package.
    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules["sqlalchemy.ext"].asyncio = module  # type: ignore[attr-defined]
