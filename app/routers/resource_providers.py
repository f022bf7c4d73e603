"""``/resource_providers`` and ``/resource_providers/{uuid}`` (spec §4)."""

from typing import Any

from fastapi import Request
from starlette.responses import Response

from app import query
from app.api import http, parameters
from app.api.deps import DatabaseDep, ReadDatabaseDep, SettingsDep
from app.api.limits import query_limits
from app.api.routing import PlacementRouter
from app.microversion import (
    BASE,
    CREATE_PROVIDER_RETURNS_BODY,
    NESTED_PROVIDERS,
    PROVIDER_MEMBER_OF,
    PROVIDER_REQUIRED_TRAITS,
    PROVIDER_RESOURCES_FILTER,
    Version,
)
from app.schemas.resource_providers import (
    CREATE_BODIES,
    CREATED_OUT,
    UPDATE_BODIES,
    ProviderList,
    ProviderOut,
    ProviderUpdateV1_14,
    create_schema,
    provider_body,
    update_schema,
)
from app.services import resource_providers as service
from app.services.resource_providers import ProviderChange, ProviderQuery, ProviderRow

router = PlacementRouter(tags=["resource providers"])

# Query keys of GET /resource_providers by the feature that introduced them,
# with their schemas in the reference's query schema (its 400s print it).
_STRING = {"type": "string"}
_UUID = {"type": "string", "format": "uuid"}
LIST_KEYS: list[tuple[Version, str, dict[str, str]]] = [
    (BASE, "name", _STRING),
    (BASE, "uuid", _UUID),
    (PROVIDER_MEMBER_OF, "member_of", _STRING),
    (PROVIDER_RESOURCES_FILTER, "resources", _STRING),
    (NESTED_PROVIDERS, "in_tree", _UUID),
    (PROVIDER_REQUIRED_TRAITS, "required", _STRING),
]


def list_query_schema(version: Version) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {key: spec for since, key, spec in LIST_KEYS if version >= since},
        "additionalProperties": False,
    }


def represent(request: Request, provider: ProviderRow) -> dict[str, Any]:
    """The provider at the request's microversion, links under the mount prefix."""
    return provider_body(provider, http.version(request), http.link_prefix(request))


def _parse_list_query(
    request: Request, limits: query.QueryLimits
) -> tuple[ProviderQuery, bool]:
    """Validate the query string (schema first, then value grammars); the flag
    says an amount beyond every ``max_unit`` was asked for (nothing matches)."""
    version = http.version(request)
    params = request.query_params
    values = query.group_values(params.multi_items(), limits)
    last = {key: params[key] for key in params.keys()}
    query.check_query_schema(last, list_query_schema(version))
    found = ProviderQuery(name=last.get("name"), uuid=last.get("uuid"), in_tree=last.get("in_tree"))
    if "member_of" in last:
        found.member_of = query.parse_member_of(
            values["member_of"], version, limits=limits
        )
    if "required" in last:
        found.required = query.parse_required(values["required"], version, limits=limits)
    cut = False
    if "resources" in last:
        found.resources, cut = query.bind_amounts(query.parse_resources(last["resources"]))
    return found, cut


def _as_change(data: Any, version: Version) -> ProviderChange:
    body = http.validate(data, update_schema(version))
    if isinstance(body, ProviderUpdateV1_14):
        return ProviderChange(
            body.name, "parent_provider_uuid" in body.model_fields_set, body.parent_provider_uuid
        )
    return ProviderChange(body.name)


@router.endpoint(
    "GET", "/resource_providers", policy="placement:resource_providers:list",
    response=ProviderList, query=parameters.provider_list(),
)
async def list_resource_providers(
    request: Request, db: ReadDatabaseDep, settings: SettingsDep
) -> Response:
    """List resource providers, filtered by the query."""
    wanted, unsatisfiable = _parse_list_query(request, query_limits(settings))
    providers = await service.list_providers(db, wanted)
    if unsatisfiable:  # looked up all the same: an unknown class answers 400
        providers = []
    return http.respond_listing(
        request,
        "resource_providers",
        providers,
        lambda provider: represent(request, provider),
        last_modified=http.max_time(*(provider.modified for provider in providers)),
    )


@router.endpoint(
    "POST", "/resource_providers", policy="placement:resource_providers:create",
    request=CREATE_BODIES, response=CREATED_OUT,
    status_code={BASE: 201, CREATE_PROVIDER_RETURNS_BODY: 200},
)
async def create_resource_provider(request: Request, db: DatabaseDep) -> Response:
    """Create a resource provider (answered with its body from 1.20)."""
    version = http.version(request)
    body = await http.parse_body(request, create_schema(version))
    provider = await service.create_provider(
        db,
        body.name,
        query.normalize_uuid(body.uuid) if body.uuid is not None else None,
        getattr(body, "parent_provider_uuid", None),
        http.utcnow(),
    )
    headers = {"location": http.location(request, f"/resource_providers/{provider.uuid}")}
    if version < CREATE_PROVIDER_RETURNS_BODY:
        return http.empty(201, headers)
    return http.respond(
        request, represent(request, provider), last_modified=provider.modified, headers=headers
    )


@router.endpoint(
    "GET", "/resource_providers/{uuid}", policy="placement:resource_providers:show",
    response=ProviderOut,
)
async def show_resource_provider(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Show a resource provider."""
    provider = await service.resource_provider(db, uuid)
    return http.respond(request, represent(request, provider), last_modified=provider.modified)


@router.endpoint(
    "DELETE", "/resource_providers/{uuid}", policy="placement:resource_providers:delete",
    status_code=204,
)
async def delete_resource_provider(uuid: str, db: DatabaseDep) -> Response:
    """Delete a resource provider without children or allocations."""
    await service.delete_provider(db, uuid)
    return http.empty(204)


@router.endpoint(
    "PUT", "/resource_providers/{uuid}", policy="placement:resource_providers:update",
    request=UPDATE_BODIES, response=ProviderOut,
)
async def update_resource_provider(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Rename a resource provider; at 1.14+ also set its parent (re-/un-parent from 1.37)."""
    version = http.version(request)
    change = await http.judge_body(request, lambda data: _as_change(data, version))
    updated = await service.update_provider(
        db, uuid, change, version=version, now=http.utcnow()
    )
    previous = updated.previous_update
    # Reference quirk (spec §2.8, Q5): Last-Modified is the time of the
    # previous change, absent when the provider had never been updated.
    return http.respond(
        request,
        represent(request, updated.provider),
        last_modified=previous,
        omit_last_modified=previous is None,
    )
