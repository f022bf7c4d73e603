"""One OpenAPI document per microversion, and Swagger UI over all of them.

Each document is built from the route declarations (:mod:`app.api.routing`):
the routes whose version range covers the version, with the request and
response models each declares for it. Handlers parse bodies themselves (the
schema depends on the version), so the bodies are filled in here.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from app.api.routing import RouteTable
from app.microversion import MAX_VERSION, VERSIONS, Version, format_version, parse_version


def _schema(model: type[BaseModel], mode: str, components: dict[str, Any]) -> dict[str, Any]:
    schemas, definitions = models_json_schema(
        [(model, mode)], ref_template="#/components/schemas/{model}"  # type: ignore[list-item]
    )
    components.update(definitions.get("$defs", {}))
    return next(iter(schemas.values()))


def build_document(app: FastAPI, routes: RouteTable, version: Version) -> dict[str, Any]:
    label = format_version(version)
    chosen = [route for route in routes.routes if route.spec.covers(version)]
    document = get_openapi(
        title=f"{app.title} (microversion {label})",
        version=label,
        description=(
            f"{app.description}\n\nThis document describes microversion {label}: send "
            f"`OpenStack-API-Version: placement {label}`."
        ),
        routes=chosen,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for route in chosen:
        spec = route.spec
        operation = document.get("paths", {}).get(spec.path, {}).get(spec.method.lower())
        if operation is None:
            continue
        if spec.policy:
            operation["x-placement-policy"] = spec.policy
        request_model = spec.request(version)
        if request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _schema(request_model, "validation", components)
                    }
                },
            }
        response_model = spec.response(version)
        answer = operation.get("responses", {}).get(str(spec.status_code))
        if response_model is not None and answer is not None:
            answer["content"] = {
                "application/json": {
                    "schema": _schema(response_model, "serialization", components)
                }
            }
    return document


def install(app: FastAPI, routes: RouteTable) -> None:
    """Serve ``/openapi.json`` (latest), ``/openapi/1.N.json`` and ``/docs``."""
    cache: dict[Version, dict[str, Any]] = {}

    def document(version: Version) -> dict[str, Any]:
        if version not in cache:
            cache[version] = build_document(app, routes, version)
        return cache[version]

    async def latest(_request: Request) -> Response:
        return JSONResponse(document(MAX_VERSION))

    async def versioned(request: Request) -> Response:
        label = request.path_params["label"]
        if label not in VERSIONS:
            return JSONResponse({"detail": f"no microversion {label}"}, status_code=404)
        return JSONResponse(document(parse_version(label)))

    async def docs(request: Request) -> HTMLResponse:
        prefix = request.scope.get("root_path", "").rstrip("/")
        urls = [{"url": f"{prefix}/openapi.json", "name": f"{VERSIONS[-1]} (latest)"}]
        urls += [
            {"url": f"{prefix}/openapi/{label}.json", "name": label}
            for label in reversed(VERSIONS[:-1])
        ]
        return get_swagger_ui_html(
            openapi_url=f"{prefix}/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_ui_parameters={"urls": urls, "urls.primaryName": urls[0]["name"]},
        )

    app.add_route("/openapi.json", latest, include_in_schema=False)
    app.add_route("/openapi/{label}.json", versioned, include_in_schema=False)
    app.add_route("/docs", docs, include_in_schema=False)
