"""Application factory and the module-level ``app`` that uvicorn serves."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from app import memory, policy_checks
from app.api import openapi, route_index
from app.api.admission import AdmissionMiddleware
from app.api.cors import PlacementCORSMiddleware
from app.api.disconnect import DisconnectMiddleware
from app.api.errors import render_error
from app.api.limits import RequestLimitsMiddleware
from app.api.middleware import Authenticator, NoAuth2, PlacementMiddleware
from app.api.routing import RouteTable
from app.api.unexpected import UnexpectedErrorMiddleware
from app.db.database import Database
from app.db.engine import make_engine
from app.db.replica import open_read_database
from app.db.schema_state import schema_is_current
from app.db.sync_child import sync_schema
from app.db.timeouts import Timeouts
from app.exceptions import (
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PlacementError,
    Unexpected,
)
from app.microversion import MAX_VERSION_STRING, MIN_VERSION_STRING
from app.observability.loop_lag import watch_event_loop
from app.observability.middleware import ObservabilityMiddleware
from app.policy import Authorizer, PolicyError
from app.routers import ALL_ROUTERS
from app.settings import Settings, get_settings

LOG = logging.getLogger(__name__)

memory.limit_arenas()  # before any thread of this worker starts


def _install_error_handlers(app: FastAPI, routes: RouteTable) -> None:
    @app.exception_handler(PlacementError)
    async def placement_error(request: Request, exc: PlacementError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            allowed = routes.allowed_methods(request.scope)
            return render_error(request, MethodNotAllowed(headers={"allow": allowed}))
        if exc.status_code == 404:
            return render_error(request, NotFound())
        error = PlacementError()
        response = render_error(request, error)
        response.status_code = exc.status_code
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return render_error(request, InvalidInput(str(exc.errors()[0].get("msg"))))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        # Only errors of the outer layers reach this one (Starlette then
        # re-raises them): UnexpectedErrorMiddleware answers the app's own.
        LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        return render_error(request, Unexpected())

    # Both inside the placement middleware (added after this): an unexpected
    # error answers the placement 500 and keeps the connection; a client gone
    # cancels its handler.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(DisconnectMiddleware)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeouts=Timeouts.of(settings),
        )
        if settings.sync_on_startup and not await schema_is_current(engine):
            # Never alembic in a spawned worker (app/db/sync_child.py).
            await sync_schema(engine, settings.database_url)
        database = Database(
            engine,
            write_attempts=settings.serialization_retry_count,
            claim_attempts=settings.allocation_conflict_retry_count,
            timeouts=Timeouts.of(settings),
            reconnect_window=settings.db_reconnect_window,
        )
        app.state.database = database
        app.state.read_database = read_database = open_read_database(
            settings.database_read_url,
            database,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            max_lag=settings.database_read_max_lag,
            retry_interval=settings.database_read_retry_interval,
        )
        # Everything built so far lives as long as the process: keep it out of
        # the cyclic collector's full passes (large answers, such as allocation
        # candidates, otherwise pay for rescanning the whole heap). Requests
        # allocate many short-lived objects that reference counting frees: a
        # young-generation pass every 50,000 allocations instead of 700 cut the
        # CPU of a 1,000-candidate answer by a quarter.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        memory.release_free_memory()  # what building the app freed
        try:
            async with watch_event_loop():
                yield
        finally:
            if read_database is not database:
                await read_database.dispose()
            await database.dispose()
            await authenticator.aclose()

    app = FastAPI(
        title="Placement API",
        version=MAX_VERSION_STRING,
        description=(
            "Wire-compatible OpenStack Placement API "
            f"(microversions {MIN_VERSION_STRING} to {MAX_VERSION_STRING})."
        ),
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry looks up the global providers on every
        # request (about 40 us, a tenth of a populate write's CPU); the service
        # reports through its own metrics and access log (app/observability/).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redoc_url=None,
        docs_url=None,
        openapi_url=None,
    )
    # Paths match exactly: ``/resource_providers/`` is a 404, not a redirect.
    app.router.redirect_slashes = False
    # Checks the declarations (no two overlap at any version) before serving.
    routes = RouteTable(route for router in ALL_ROUTERS for route in router.routes)
    policy_checks.defer()  # http: policy checks (requests) imported only if a rule uses them
    try:
        authorizer = Authorizer(
            settings.policy_file,
            settings.enforce_new_defaults,
            enforce_scope=settings.enforce_scope,
            operations=routes.operations_by_policy(),
        )
    except PolicyError as exc:
        # Refuse to start rather than answer 500 on the first request.
        LOG.error("%s", exc)
        raise SystemExit(f"placement-api: {exc}") from None
    app.state.settings = settings
    app.state.authorizer = authorizer
    app.state.route_table = routes
    openapi.install(app, routes)
    # Routing looks at the routes under the path's first segment only.
    route_index.install(app, ALL_ROUTERS)
    _install_error_handlers(app, routes)
    authenticator: Authenticator = NoAuth2()
    if settings.auth_strategy == "keystone":
        # Imported only here: its HTTP client (httpx) is ~5 MB a worker.
        from app.auth.keystone import KeystoneAuthenticator

        authenticator = KeystoneAuthenticator(settings.keystone)
    app.add_middleware(AdmissionMiddleware, settings=settings)  # inside: request id known
    app.add_middleware(RequestLimitsMiddleware, settings=settings)
    app.add_middleware(
        PlacementMiddleware,
        authenticator=authenticator,
        strip_identity=settings.auth_strategy == "keystone",
        public_docs_and_metrics=settings.docs_and_metrics_public,
    )
    if settings.cors_allowed_origins:
        app.add_middleware(
            PlacementCORSMiddleware, allowed_origins=settings.cors_allowed_origins
        )
    # Outermost: path prefix, metrics, access log.
    app.add_middleware(ObservabilityMiddleware, template_of=routes.template)
    return app


app = create_app()
