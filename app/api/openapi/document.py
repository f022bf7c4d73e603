"""The OpenAPI document of one microversion, from the route declarations.

Only the routes whose range covers the version, each with the request and
response models, success status and query parameters it has at that version,
the error statuses it may answer (the placement error body), its handler's
name as operationId, and the ``x-auth-token`` security scheme.
"""

import inspect
import re
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from app.api.openapi.schemas import error_schema, mark_lineage, model_schemas
from app.api.routing import Endpoint, QueryParam, RouteTable, VersionedRoute
from app.microversion import BASE, MAX_VERSION, Version, format_version

SECURITY_SCHEME = "x-auth-token"
METHOD_ORDER = ("GET", "PUT", "POST", "PATCH", "DELETE")
_PATH_PARAM = re.compile(r"{(\w+)}")


def served(routes: RouteTable, version: Version) -> list[VersionedRoute]:
    """The routes served at ``version``, by path then method."""
    chosen = [route for route in routes.routes if route.spec.covers(version)]
    return sorted(
        chosen, key=lambda route: (route.spec.path, METHOD_ORDER.index(route.spec.method))
    )


def error_statuses(spec: Endpoint) -> list[int]:
    """What a route may answer besides success, in the placement error body.

    400 and 406 (a bad or unacceptable microversion, a bad query or body, an
    Accept that is not JSON) everywhere; 401, 403 and 404 where a token and a
    policy apply, and 503 there too (the database or Keystone unavailable);
    409 (generation conflicts, in-use) on writes; 415 where a body is read.
    """
    statuses = {400, 406}
    if spec.policy is not None:
        statuses |= {401, 403, 404, 503}
    if spec.method != "GET":
        statuses.add(409)
    if spec.json_body:
        statuses.add(415)
    return sorted(statuses)


def _parameter(param: QueryParam, version: Version) -> dict[str, Any]:
    description = param.description
    if param.since > BASE or param.until < MAX_VERSION:
        description += f"\n\nServed at {_range(param.since, param.until)}."
    repeated = param.repeated_since is not None and version >= param.repeated_since
    if repeated:
        description += " May be given more than once."
    schema: dict[str, Any] = {"type": param.kind}
    entry: dict[str, Any] = {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": description,
        "schema": {"type": "array", "items": schema} if repeated else schema,
        "x-placement-since": format_version(param.since),
    }
    if repeated:
        entry["explode"] = True
    return entry


def _range(since: Version, until: Version) -> str:
    if until == MAX_VERSION:
        return f"{format_version(since)} and later"
    return f"{format_version(since)} to {format_version(until)}"


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


class _Builder:
    def __init__(self, version: Version) -> None:
        self.version = version
        self.wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []

    def want(self, model: type[BaseModel] | None, mode: JsonSchemaMode) -> None:
        if model is not None and (model, mode) not in self.wanted:
            self.wanted.append((model, mode))

    def operation(
        self, route: VersionedRoute, schemas: dict[Any, dict[str, Any]]
    ) -> dict[str, Any]:
        spec, version = route.spec, self.version
        doc = inspect.getdoc(route.endpoint) or ""
        description = doc.partition("\n")[2].strip()
        served_at = f"Served at microversion {_range(spec.since, spec.until)}."
        operation: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.summary,
            "description": f"{description}\n\n{served_at}".strip(),
            "tags": [str(tag) for tag in route.tags],
            "x-placement-since": format_version(spec.since),
        }
        if spec.until < MAX_VERSION:
            operation["x-placement-until"] = format_version(spec.until)
        if spec.policy is None:
            operation["security"] = []
        else:
            operation["x-placement-policy"] = spec.policy
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(spec.path)
        ]
        parameters += [_parameter(param, version) for param in spec.query if param.covers(version)]
        if parameters:
            operation["parameters"] = parameters
        request_model = spec.request(version)
        if request_model is not None:
            operation["requestBody"] = {
                "required": True, "content": _json(schemas[(request_model, "validation")])
            }
        responses: dict[str, Any] = {}
        response_model = spec.response(version)
        success = spec.status(version)
        for status in (success, *spec.also):
            answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
            if response_model is not None and status == success and status != 204:
                answer["content"] = _json(schemas[(response_model, "serialization")])
            responses[str(status)] = answer
        for status in error_statuses(spec):
            responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
        operation["responses"] = responses
        return operation


def add_links(paths: dict[str, dict[str, Any]], components: dict[str, Any]) -> None:
    """OpenAPI links from what creates a resource to what reads or changes it.

    A ``POST`` answering a body with a ``uuid`` links to the operations under
    ``<path>/{uuid}``; a ``PUT`` on ``.../{name}`` links to the other
    operations on that path and under it, with the same ``name``.
    """
    for path, item in paths.items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2") or "$ref" in answer:
                    continue
                target, value = None, ""
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if method == "post" and schema and _has_uuid(schema, components):
                    target, value = f"{path}/{{uuid}}", "$response.body#/uuid"
                elif method == "put" and path.endswith("}"):
                    name = _PATH_PARAM.findall(path)[-1]
                    target, value = path, f"$request.path.{name}"
                if target is None:
                    continue
                # The target's last parameter comes from the answer (or the
                # request); the others from the request's path.
                known = set(_PATH_PARAM.findall(path))
                last = _PATH_PARAM.findall(target)[-1]
                links = {
                    other["operationId"]: {
                        "operationId": other["operationId"],
                        "parameters": {
                            name: value if name == last else f"$request.path.{name}"
                            for name in _PATH_PARAM.findall(other_path)
                        },
                    }
                    for other_path, other_item in paths.items()
                    if (other_path == target or other_path.startswith(target + "/"))
                    and set(_PATH_PARAM.findall(other_path)) <= known | {last}
                    for other_method, other in other_item.items()
                    if other is not operation and not (
                        other_path == target and other_method == "put" and method == "put"
                    )
                }
                if links:
                    answer["links"] = links


def _has_uuid(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    ref = schema.get("$ref", "")
    component = components.get(ref.rsplit("/", 1)[-1], {})
    return "uuid" in component.get("properties", {})


def _error_responses(version: Version) -> dict[str, Any]:
    body = {
        **_json({"$ref": "#/components/schemas/PlacementError"}),
        "text/html": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    }
    found: dict[str, Any] = {}
    for status in (400, 403, 404, 406, 409, 415):
        found[str(status)] = {"description": HTTPStatus(status).phrase, "content": body}
    found["401"] = {
        "description": "No or an invalid token (the body is the authentication layer's).",
        "content": {"application/json": {"schema": {"type": "object"}},
                    "text/plain": {"schema": {"type": "string"}}},
    }
    found["503"] = {
        "description": "The database or Keystone is unavailable: retry later (the body is"
                       " the placement error format, or Keystone's when it cannot be asked).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return found


def build_document(
    title: str, description: str, routes: RouteTable, version: Version
) -> dict[str, Any]:
    label = format_version(version)
    chosen = served(routes, version)
    builder = _Builder(version)
    for route in chosen:
        builder.want(route.spec.request(version), "validation")
        builder.want(route.spec.response(version), "serialization")
    schemas, components = model_schemas(builder.wanted, version)
    for route in chosen:
        spec = route.spec
        for models in (spec.request, spec.response):
            mark_lineage(components, models, spec.since, spec.until, version)
    paths: dict[str, dict[str, Any]] = {}
    for route in chosen:
        paths.setdefault(route.spec.path, {})[route.spec.method.lower()] = builder.operation(
            route, schemas
        )
    add_links(paths, components)
    components["PlacementError"] = error_schema(version)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title} (microversion {label})",
            "version": label,
            "description": (
                f"{description}\n\nThis document describes microversion {label}: every "
                f"request carries `OpenStack-API-Version: placement {label}`. Fields and "
                "parameters added or removed by a later microversion are marked "
                "`x-placement-since` / `x-placement-until`."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": _error_responses(version),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-auth-token",
                    "description": "A Keystone token; with `auth_strategy = noauth2`, "
                    "`admin` (or `user:project`).",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }
