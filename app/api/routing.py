"""Each route declared once: path, method, policy, version range, models.

A router module declares its endpoints with :meth:`PlacementRouter.endpoint`::

    @router.endpoint("PUT", "/resource_classes/{name}",
                     policy="placement:resource_classes:update",
                     since=RESOURCE_CLASSES, until=before(RESOURCE_CLASS_PUT_CREATES),
                     request=ResourceClassBody, response=ResourceClassOut)
    async def rename_resource_class(request: Request, name: str, db: DatabaseDep): ...

The declaration (:class:`Endpoint`) is what routing, the checks every handler
used to repeat, the OpenAPI generator and the policy table read:

* routing: a :class:`VersionedRoute` matches only inside its version range,
  so one path and method can have a handler per range; outside every range
  the route answers 404 (or 405 where the reference does, ``below_status``);
* before the handler runs, in the reference's order: the version gate, then
  ``Accept`` (406) for GETs and ``Content-Type`` (415) for bodies (or the
  media checks first, ``media_first``), then the policy rule (403);
* :class:`RouteTable`, built once by the app factory, refuses two
  declarations of one path and method whose ranges overlap at any version,
  and answers the ``Allow`` header and the path templates (for metrics).
"""

import itertools
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, compile_path
from starlette.types import Scope

from app.api import deps, http
from app.exceptions import MethodNotAllowed, NotFound
from app.microversion import BASE, MAX_VERSION, Version, format_version
from app.schemas.versioned import ByVersion, Model

Handler = Callable[..., Awaitable[Response]]
HandlerT = TypeVar("HandlerT", bound=Handler)


@dataclass(frozen=True)
class QueryParam:
    """A query parameter of a route, as the OpenAPI documents show it.

    Handlers parse their queries themselves (the reference's 400 texts); this
    declaration is documentation, per version like the route.
    """

    name: str
    description: str
    since: Version = BASE
    until: Version = MAX_VERSION
    required: bool = False
    # From this version the parameter may be given more than once.
    repeated_since: Version | None = None
    kind: str = "string"

    def covers(self, version: Version) -> bool:
        return self.since <= version <= self.until


def _by_version(models: Model | ByVersion | None) -> ByVersion:
    if isinstance(models, ByVersion):
        return models
    return ByVersion((BASE, models))


@dataclass(frozen=True)
class Endpoint:
    """The declaration of one route (see the module docstring)."""

    method: str
    path: str
    # The oslo.policy rule; None for the unauthenticated documents (``GET /``).
    policy: str | None
    since: Version = BASE
    until: Version = MAX_VERSION
    # Answered below ``since`` when no other declaration covers the version.
    below_status: int = 404
    request: ByVersion = field(default_factory=ByVersion)
    response: ByVersion = field(default_factory=ByVersion)
    status_code: int = 200
    # (since, status) pairs when the success status changes with the version.
    statuses: tuple[tuple[Version, int], ...] = ()
    # Other success statuses (``204``: a create-or-verify found it already there).
    also: tuple[int, ...] = ()
    query: tuple[QueryParam, ...] = ()
    # The handler's name: the operationId of the documents.
    name: str = ""
    # GET routes answer 406 unless the client takes JSON.
    accept_json: bool = True
    # Routes with a body answer 415 unless it is declared as JSON.
    json_body: bool = False
    # The reference judges Accept / Content-Type before the version here.
    media_first: bool = False
    # False: the handler authorizes itself (its policy target comes from the request).
    authorize: bool = True
    summary: str = ""

    def covers(self, version: Version) -> bool:
        return self.since <= version <= self.until

    def status(self, version: Version) -> int:
        """The success status at ``version``."""
        found = self.status_code
        for since, status in self.statuses:
            if version >= since:
                found = status
        return found

    @property
    def range_label(self) -> str:
        return f"{format_version(self.since)}-{format_version(self.until)}"


class VersionedRoute(APIRoute):
    """An APIRoute that carries its :class:`Endpoint` and honours its range."""

    spec: ClassVar[Endpoint]
    # Declarations of the same path and method (filled by RouteTable).
    siblings: ClassVar[list[Endpoint]] = []

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.FULL:
            version = (scope.get("state") or {}).get("version")
            if version is not None and not self.spec.covers(version) and any(
                sibling.covers(version) for sibling in self.siblings
            ):
                return Match.NONE, {}
        return match, child

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = _direct_call(self) or super().get_route_handler()
        spec = self.spec

        async def handler(request: Request) -> Response:
            version = http.version(request)
            if spec.media_first:
                _check_media(spec, request)
            if not spec.covers(version):
                if spec.below_status == 405 and version < spec.since:
                    # The reference's version-gated 405 has an empty message.
                    raise MethodNotAllowed("", headers={"allow": allowed_methods(request)})
                raise NotFound()
            if not spec.media_first:
                _check_media(spec, request)
            if spec.policy is not None and spec.authorize:
                http.authorize(request, spec.policy)
            return await inner(request)

        return handler


def _direct_call(route: APIRoute) -> Callable[[Request], Awaitable[Response]] | None:
    """The handler called with its arguments taken straight from the request,
    when they are all plain (the request, ``str`` path parameters, the
    dependencies of ``deps.PLAIN_DEPENDENCIES``): FastAPI's dependency solver
    and its response handling cost ~0.1 ms a request. ``None`` otherwise."""
    dependant = route.dependant
    if (dependant.query_params or dependant.header_params or dependant.cookie_params
            or dependant.body_params or dependant.response_param_name
            or dependant.background_tasks_param_name or dependant.http_connection_param_name
            or dependant.websocket_param_name or dependant.security_scopes_param_name):
        return None
    if any(field.field_info.annotation is not str or field.alias != field.name
           for field in dependant.path_params):
        return None
    resolvers: list[tuple[str, Callable[[Request], object]]] = []
    for dependency in dependant.dependencies:
        resolve = deps.PLAIN_DEPENDENCIES.get(dependency.call)
        if resolve is None or dependency.name is None:
            return None
        resolvers.append((dependency.name, resolve))
    path_names = [field.name for field in dependant.path_params]
    request_name = dependant.request_param_name
    endpoint: Handler = route.endpoint

    async def call(request: Request) -> Response:
        arguments: dict[str, object] = {}
        if request_name is not None:
            arguments[request_name] = request
        path_params = request.path_params
        for name in path_names:
            arguments[name] = path_params[name]
        for name, resolve in resolvers:
            arguments[name] = resolve(request)
        return await endpoint(**arguments)

    return call


def _check_media(spec: Endpoint, request: Request) -> None:
    if spec.method == "GET" and spec.accept_json:
        http.check_accept(request)
    elif spec.json_body:
        http.require_json(request)


class PlacementRouter(APIRouter):
    """An APIRouter whose routes are declared with :meth:`endpoint`."""

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        policy: str | None,
        since: Version = BASE,
        until: Version = MAX_VERSION,
        below_status: int = 404,
        request: Model | ByVersion | None = None,
        response: Model | ByVersion | None = None,
        status_code: int | Mapping[Version, int] = 200,
        also: tuple[int, ...] = (),
        query: tuple[QueryParam, ...] = (),
        accept_json: bool = True,
        json_body: bool | None = None,
        media_first: bool = False,
        authorize: bool = True,
    ) -> Callable[[HandlerT], HandlerT]:
        def register(handler: HandlerT) -> HandlerT:
            requests = _by_version(request)
            responses = _by_version(response)
            statuses = (
                tuple(sorted(status_code.items()))
                if isinstance(status_code, Mapping) else ((since, status_code),)
            )
            spec = Endpoint(
                method=method,
                path=path,
                policy=policy,
                since=since,
                until=until,
                below_status=below_status,
                request=requests,
                response=responses,
                status_code=statuses[0][1],
                statuses=statuses,
                also=also,
                query=query,
                name=handler.__name__,
                accept_json=accept_json,
                json_body=bool(requests.models()) if json_body is None else json_body,
                media_first=media_first,
                authorize=authorize,
                summary=(handler.__doc__ or "").strip().split("\n")[0],
            )
            route_class = type(
                f"Route_{handler.__name__}", (VersionedRoute,), {"spec": spec, "siblings": []}
            )
            latest = responses.models()
            self.add_api_route(
                path,
                handler,
                methods=[method],
                status_code=spec.status(MAX_VERSION),
                response_model=latest[0] if latest else None,
                summary=spec.summary or None,
                route_class_override=route_class,
            )
            return handler

        return register


def allowed_methods(request: Request) -> str:
    table: RouteTable = request.app.state.route_table
    return table.allowed_methods(request.scope)


class RouteOverlap(RuntimeError):
    """Two declarations of one path and method cover a common version."""


class RouteTable:
    """Every declared route of the app, checked once when the app is built."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.routes: list[VersionedRoute] = []
        by_operation: dict[tuple[str, str], list[Endpoint]] = {}
        methods_by_path: dict[str, list[str]] = {}
        for route in routes:
            if not isinstance(route, VersionedRoute):
                continue
            spec = route.spec
            self.routes.append(route)
            by_operation.setdefault((spec.method, spec.path), []).append(spec)
            methods = methods_by_path.setdefault(spec.path, [])
            if spec.method not in methods:
                methods.append(spec.method)
            type(route).siblings = by_operation[(spec.method, spec.path)]
        for (method, path), specs in by_operation.items():
            ordered = sorted(specs, key=lambda spec: spec.since)
            for earlier, later in itertools.pairwise(ordered):
                if later.since <= earlier.until:
                    raise RouteOverlap(
                        f"{method} {path} is declared for {earlier.range_label} and "
                        f"{later.range_label}"
                    )
        self._methods = [
            (compile_path(path)[0], path, ", ".join(methods))
            for path, methods in methods_by_path.items()
        ]
        self.endpoints: list[Endpoint] = [
            spec for specs in by_operation.values() for spec in specs
        ]

    def _find(self, path: str) -> tuple[re.Pattern[str], str, str] | None:
        for entry in self._methods:
            if entry[0].match(path):
                return entry
        return None

    def allowed_methods(self, scope: Scope) -> str:
        found = self._find(http.route_path(scope))
        return found[2] if found else ""

    def template(self, path: str) -> str | None:
        """The declared path template that ``path`` (without prefix) matches."""
        found = self._find(path)
        return found[1] if found else None

    def operations_by_policy(self) -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        for spec in self.endpoints:
            if spec.policy is not None:
                operations = found.setdefault(spec.policy, [])
                if (spec.method, spec.path) not in operations:
                    operations.append((spec.method, spec.path))
        return found
