"""One OpenAPI document per microversion, and Swagger UI and ReDoc over them.

* ``/openapi.json``: the latest microversion's document; ``/openapi/1.N.json``
  each microversion's (:mod:`app.api.openapi.document`, built from the route
  declarations);
* ``/docs``: Swagger UI, its top bar picks the microversion; ``/redoc`` (and
  ``/openapi/redoc``, which needs no token) ReDoc; their assets are served
  from ``/openapi/static/`` (:mod:`app.api.openapi.viewers`).
"""

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from app.api.openapi import viewers
from app.api.openapi.document import build_document
from app.api.routing import RouteTable
from app.microversion import MAX_VERSION, VERSIONS, Version, parse_version

__all__ = ["build_document", "install"]


def install(app: FastAPI, routes: RouteTable) -> None:
    cache: dict[Version, dict[str, Any]] = {}

    def document(version: Version) -> dict[str, Any]:
        if version not in cache:
            cache[version] = build_document(app.title, app.description, routes, version)
        return cache[version]

    async def latest(_request: Request) -> Response:
        return JSONResponse(document(MAX_VERSION))

    async def versioned(request: Request) -> Response:
        label = request.path_params["label"]
        if label not in VERSIONS:
            return JSONResponse({"detail": f"no microversion {label}"}, status_code=404)
        return JSONResponse(document(parse_version(label)))

    async def docs(request: Request) -> HTMLResponse:
        return viewers.swagger_ui(request, app.title)

    async def redoc(request: Request) -> HTMLResponse:
        return viewers.redoc(request, app.title)

    async def asset(request: Request) -> Response:
        return viewers.asset(request)

    app.add_route("/openapi.json", latest, include_in_schema=False)
    app.add_route("/openapi/static/{name}", asset, include_in_schema=False)
    app.add_route("/openapi/redoc", redoc, include_in_schema=False)
    app.add_route("/openapi/{label}.json", versioned, include_in_schema=False)
    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
