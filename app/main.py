"""Application factory and the module-level ``app`` that uvicorn serves."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from app import openapi
from app.cors import PlacementCORSMiddleware
from app.db.engine import make_engine
from app.db.schema import sync_database
from app.errors import METHOD_NOT_ALLOWED, PlacementError, error_response
from app.middleware import PlacementMiddleware, route_path
from app.ops import OpsMiddleware
from app.policy import Authorizer, PolicyError
from app.routers import ALL_ROUTERS
from app.settings import Settings, get_settings

LOG = logging.getLogger(__name__)



class MethodTable:
    """Allowed methods per path template, in registration order (for ``Allow``)."""

    def __init__(self, routers: list[APIRouter]) -> None:
        self._entries: list[tuple[object, list[str]]] = []
        by_path: dict[str, list[str]] = {}
        for route in (route for router in routers for route in router.routes):
            if isinstance(route, APIRoute):
                methods = by_path.setdefault(route.path, [])
                for method in route.methods or ():
                    if method not in methods:
                        methods.append(method)
        for path, methods in by_path.items():
            regex, _, _ = compile_path(path)
            self._entries.append((regex, methods))

    def __call__(self, request: Request) -> str:
        path = route_path(request.scope)
        for regex, methods in self._entries:
            if regex.match(path):  # type: ignore[attr-defined]
                return ", ".join(methods)
        return ""


def _render(request: Request, exc: PlacementError) -> Response:
    state = request.state
    state.error_code = exc.code  # read by app.ops (generation-conflict metric)
    return error_response(
        exc.status,
        exc.message,
        request_id=getattr(state, "request_id", ""),
        version=getattr(state, "version", None),
        code=exc.code,
        method=request.method,
        accept=request.headers.get("accept"),
        content_type=request.headers.get("content-type"),
        headers=exc.headers,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PlacementError)
    async def placement_error(request: Request, exc: PlacementError) -> Response:
        return _render(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            allowed = app.state.allowed_methods(request)
            return _render(
                request,
                PlacementError(METHOD_NOT_ALLOWED, status=405, headers={"allow": allowed}),
            )
        return _render(request, PlacementError(status=exc.status_code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _render(request, PlacementError(str(exc.errors()[0].get("msg")), status=400))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        return _render(
            request, PlacementError("An unexpected error occurred.", status=500)
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    try:
        authorizer = Authorizer(settings.policy_file, settings.enforce_new_defaults)
    except PolicyError as exc:
        # Refuse to start rather than answer 500 on the first request.
        LOG.error("%s", exc)
        raise SystemExit(f"placement-api: {exc}") from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        if settings.sync_on_startup:
            await sync_database(engine)
        app.state.engine = engine
        # Everything built so far lives as long as the process: keep it out of
        # the cyclic collector's full passes (large answers, such as allocation
        # candidates, otherwise pay for rescanning the whole heap). Requests
        # allocate many short-lived objects that reference counting frees: a
        # young-generation pass every 50,000 allocations instead of 700 cut the
        # CPU of a 1,000-candidate answer by a quarter.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Placement API",
        version="1.39",
        description="Wire-compatible OpenStack Placement API (microversions 1.0 to 1.39).",
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.authorizer = authorizer
    for router in ALL_ROUTERS:
        app.include_router(router)
    # Paths match exactly: ``/resource_providers/`` is a 404, not a redirect.
    app.router.redirect_slashes = False
    app.state.allowed_methods = MethodTable(ALL_ROUTERS)
    openapi.install(app, ALL_ROUTERS)
    _install_error_handlers(app)
    app.add_middleware(PlacementMiddleware, auth_strategy=settings.auth_strategy)
    if settings.cors_allowed_origins:
        app.add_middleware(
            PlacementCORSMiddleware, allowed_origins=settings.cors_allowed_origins
        )
    app.add_middleware(OpsMiddleware)  # outermost: metrics, access log, path prefix
    return app


app = create_app()
