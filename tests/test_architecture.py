"""The house rules of ARCHITECTURE.md, checked on the source.

Imports are read with ``ast`` from every module under ``app/``, including the
imports inside functions (a late import hides a cycle, it does not remove it).
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.responses import Response

from app.api.routing import Endpoint, PlacementRouter, RouteOverlap, RouteTable
from app.microversion import MAX_VERSION, VERSIONS, before, parse_version
from app.routers import ALL_ROUTERS

APP = Path(__file__).resolve().parent.parent / "app"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(path): path for path in APP.rglob("*.py")}


def imports_of(name: str) -> Iterator[str]:
    """Every module ``name`` imports, at any depth of its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in MODULES:
                    yield candidate


def app_imports(name: str) -> set[str]:
    found = set()
    for imported in imports_of(name):
        # "app.db.models" -> the module itself; "app.x.y" attribute -> its module
        while imported and imported not in MODULES:
            imported = imported.rpartition(".")[0]
        if imported and imported != name:
            found.add(imported)
    return found


def modules_under(prefix: str) -> list[str]:
    return sorted(name for name in MODULES if name == prefix or name.startswith(prefix + "."))


def offending(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for name in modules_under(prefix):
        for imported in imports_of(name):
            if imported.startswith(forbidden):
                found.append(f"{name} imports {imported}")
    return found


def test_routers_import_no_sqlalchemy_and_no_database_code() -> None:
    assert offending("app.routers", ("sqlalchemy", "app.db")) == []


def test_database_layer_imports_no_web_framework_and_no_http_errors() -> None:
    assert offending("app.db", ("fastapi", "starlette", "app.api", "app.routers")) == []


def test_services_know_nothing_of_http() -> None:
    assert offending("app.services", ("fastapi", "starlette", "app.api", "app.routers")) == []


def test_schemas_are_plain_models() -> None:
    layers = ("fastapi", "starlette", "sqlalchemy", "app.api", "app.services", "app.db",
              "app.routers")
    assert offending("app.schemas", layers) == []


def test_no_import_cycles() -> None:
    graph = {name: app_imports(name) for name in MODULES}
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    # A package importing its own submodules (``app.routers`` -> ``app.routers.x``)
    # is how packages list their parts, not a cycle, unless a submodule imports back.
    assert cycles == []


def test_no_module_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_versions_are_spelled_only_in_the_feature_table() -> None:
    literal = re.compile(r"\(1, \d+\)")
    found = [
        f"{name}: {line.strip()}"
        for name, path in MODULES.items()
        if name != "app.microversion"
        for line in path.read_text().splitlines()
        if literal.search(line)
    ]
    assert found == []


def test_every_microversion_names_a_feature() -> None:
    import app.microversion as microversion

    features = {
        value for key, value in vars(microversion).items()
        if key.isupper() and isinstance(value, tuple) and len(value) == 2
    }
    assert {parse_version(label) for label in VERSIONS} <= features
    assert max(features) == MAX_VERSION


def test_route_table_of_the_app_is_consistent() -> None:
    table = RouteTable(route for router in ALL_ROUTERS for route in router.routes)
    specs: list[Endpoint] = table.endpoints
    # Every API route has a policy rule (only the version document is public).
    assert [spec.path for spec in specs if spec.policy is None] == ["/"]
    # One handler per range: PUT /resource_classes/{name} is two declarations.
    puts = [spec for spec in specs
            if (spec.method, spec.path) == ("PUT", "/resource_classes/{name}")]
    assert len(puts) == 2
    assert before(puts[1].since) == puts[0].until or before(puts[0].since) == puts[1].until


def test_overlapping_declarations_are_refused() -> None:
    router = PlacementRouter()

    async def first() -> Response:
        return Response()

    async def second() -> Response:
        return Response()

    router.endpoint("GET", "/thing", policy="rule", since=(1, 2))(first)
    router.endpoint("GET", "/thing", policy="rule", since=(1, 5))(second)
    with pytest.raises(RouteOverlap, match="GET /thing"):
        RouteTable(router.routes)
