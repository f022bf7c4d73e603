"""One OpenAPI document per microversion, and Swagger UI over all of them.

Handlers parse bodies themselves (the schema depends on the version), so the
request bodies are described here: per route, a function of the version that
picks the same model the handler validates with.
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from app.microversion import MAX_VERSION, VERSIONS, Version, format_version
from app.schemas import aggregates, allocations, inventories, resource_classes, traits
from app.schemas import reshaper as reshaper_schemas
from app.schemas import resource_providers as providers

BodyPicker = Callable[[Version], type[BaseModel] | None]


def _always(model: type[BaseModel]) -> BodyPicker:
    return lambda _version: model


REQUEST_BODIES: dict[tuple[str, str], BodyPicker] = {
    ("POST", "/resource_providers"): providers.create_schema,
    ("PUT", "/resource_providers/{uuid}"): providers.update_schema,
    ("POST", "/resource_classes"): _always(resource_classes.ResourceClassBody),
    ("PUT", "/resource_classes/{name}"): lambda v: (
        resource_classes.ResourceClassBody if v < (1, 7) else None
    ),
    ("POST", "/resource_providers/{uuid}/inventories"): _always(inventories.InventoryCreate),
    ("PUT", "/resource_providers/{uuid}/inventories"): _always(
        inventories._InventoriesOuter  # noqa: SLF001 - the outer shape is the documented one
    ),
    ("PUT", "/resource_providers/{uuid}/inventories/{resource_class}"): _always(
        inventories.InventoryUpdate
    ),
    ("PUT", "/resource_providers/{uuid}/traits"): _always(traits.ProviderTraitsBody),
    ("PUT", "/resource_providers/{uuid}/aggregates"): lambda v: (
        aggregates.AggregatesBodyV1_19 if v >= (1, 19) else aggregates.AggregatesBody
    ),
    ("PUT", "/allocations/{consumer_uuid}"): lambda v: allocations.pick(
        allocations.PUT_MODELS, v
    ),
    ("POST", "/allocations"): lambda v: allocations.pick(allocations.POST_MODELS, v),
    ("POST", "/reshaper"): _always(reshaper_schemas._Reshape),  # noqa: SLF001
}


def _minimum(route: APIRoute) -> tuple[Version, int]:
    for dependency in route.dependant.dependencies:
        minimum = getattr(dependency.call, "minimum", None)
        if minimum is not None:
            return minimum, getattr(dependency.call, "below_status", 404)
    return (1, 0), 404


def _routes_at(routers: list[APIRouter], version: Version) -> list[APIRoute]:
    routes = []
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute):
            continue
        minimum, below_status = _minimum(route)
        if version >= minimum or below_status != 404:
            routes.append(route)
    return routes


def build_document(app: FastAPI, routers: list[APIRouter], version: Version) -> dict[str, Any]:
    label = format_version(version)
    document = get_openapi(
        title=f"{app.title} (microversion {label})",
        version=label,
        description=(
            f"{app.description}\n\nThis document describes microversion {label}: send "
            f"`OpenStack-API-Version: placement {label}`."
        ),
        routes=_routes_at(routers, version),
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for (method, path), picker in REQUEST_BODIES.items():
        operation = document.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            continue
        model = picker(version)
        if model is None:
            continue
        schemas, definitions = models_json_schema(
            [(model, "validation")], ref_template="#/components/schemas/{model}"
        )
        schema = next(iter(schemas.values()))
        components.update(definitions.get("$defs", {}))
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return document


def install(app: FastAPI, routers: list[APIRouter]) -> None:
    """Serve ``/openapi.json`` (latest), ``/openapi/1.N.json`` and ``/docs``."""
    cache: dict[Version, dict[str, Any]] = {}

    def document(version: Version) -> dict[str, Any]:
        if version not in cache:
            cache[version] = build_document(app, routers, version)
        return cache[version]

    async def latest(_request: Request) -> Response:
        return JSONResponse(document(MAX_VERSION))

    async def versioned(request: Request) -> Response:
        label = request.path_params["label"]
        if label not in VERSIONS:
            return JSONResponse({"detail": f"no microversion {label}"}, status_code=404)
        major, minor = (int(part) for part in label.split("."))
        return JSONResponse(document((major, minor)))

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
