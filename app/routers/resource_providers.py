"""``/resource_providers`` and ``/resource_providers/{uuid}`` (spec §4)."""

import uuid as uuidlib
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app import query
from app.api import http
from app.api.routing import PlacementRouter
from app.db.engine import run_read, run_write
from app.db.repositories.providers_core import ProviderRow
from app.db.repositories.resource_providers import (
    NoSuchResourceClass,
    NoSuchTraits,
    ProviderFilters,
    ResourceProviderRepository,
    resource_class_ids,
    trait_filter_ids,
)
from app.exceptions import InvalidInput
from app.microversion import Version
from app.schemas.resource_providers import (
    CREATE_BODIES,
    UPDATE_BODIES,
    ProviderList,
    ProviderOut,
    ProviderUpdateV1_14,
    create_schema,
    provider_body,
    update_schema,
)

router = PlacementRouter(tags=["resource providers"])

POST_RETURNS_BODY_VERSION: Version = (1, 20)
REPARENT_VERSION: Version = (1, 37)

# Query keys of GET /resource_providers by the version that introduced them.
LIST_KEYS: list[tuple[Version, str]] = [
    ((1, 0), "name"),
    ((1, 0), "uuid"),
    ((1, 3), "member_of"),
    ((1, 4), "resources"),
    ((1, 14), "in_tree"),
    ((1, 18), "required"),
]


def represent(request: Request, provider: ProviderRow) -> dict[str, Any]:
    """The provider at the request's microversion, links under the mount prefix."""
    return provider_body(provider, http.version(request), http.link_prefix(request))


def _list_keys(version: Version) -> list[str]:
    return [key for since, key in LIST_KEYS if version >= since]


def _parse_list_query(
    request: Request,
) -> tuple[ProviderFilters, query.TraitFilter, dict[str, int]]:
    """Validate the query string (schema first, then value grammars)."""
    version = http.version(request)
    params = request.query_params
    query.check_allowed_keys(params.keys(), _list_keys(version))
    last = {key: params[key] for key in params.keys()}
    for key in ("uuid", "in_tree"):
        if key in last:
            query.check_strict_uuid(key, last[key])
    filters = ProviderFilters(
        name=last.get("name"), uuid=last.get("uuid"), in_tree=last.get("in_tree")
    )
    if "member_of" in last:
        filters.aggregates = query.parse_member_of(params.getlist("member_of"), version)
    traits = query.TraitFilter()
    if "required" in last:
        traits = query.parse_required(params.getlist("required"), version)
    resources: dict[str, int] = {}
    if "resources" in last:
        resources = query.parse_resources(last["resources"])
    return filters, traits, resources


@router.endpoint(
    "GET", "/resource_providers", policy="placement:resource_providers:list",
    response=ProviderList,
)
async def list_resource_providers(request: Request) -> Response:
    filters, traits, resources = _parse_list_query(request)

    async def work(conn: AsyncConnection) -> list[ProviderRow]:
        try:
            filters.required_traits, filters.forbidden_traits = await trait_filter_ids(
                conn, traits
            )
        except NoSuchTraits as exc:
            raise InvalidInput(f'Invalid trait(s) in "required" parameter: {exc.message}') from None
        try:
            class_ids = await resource_class_ids(conn, resources)
        except NoSuchResourceClass as exc:
            raise InvalidInput(
                f"Invalid resource class in resources parameter: {exc.message}"
            ) from None
        filters.resources = {class_ids[name]: amount for name, amount in resources.items()}
        return await ResourceProviderRepository(conn).filtered(filters)

    providers = await run_read(http.engine(request), work)
    return http.respond(
        request,
        {"resource_providers": [represent(request, provider) for provider in providers]},
        last_modified=http.max_time(*(provider.modified for provider in providers)),
    )


@router.endpoint(
    "POST", "/resource_providers", policy="placement:resource_providers:create",
    request=CREATE_BODIES, response=ProviderOut,
)
async def create_resource_provider(request: Request) -> Response:
    version = http.version(request)
    body = await http.parse_body(request, create_schema(version))
    uuid = query.normalize_uuid(body.uuid) if body.uuid is not None else str(uuidlib.uuid4())
    parent_uuid = getattr(body, "parent_provider_uuid", None)
    now = http.utcnow()
    provider: ProviderRow = await run_write(
        http.engine(request),
        lambda conn: ResourceProviderRepository(conn).create(body.name, uuid, parent_uuid, now),
    )
    headers = {"location": http.location(request, f"/resource_providers/{uuid}")}
    if version < POST_RETURNS_BODY_VERSION:
        return http.empty(201, headers)
    return http.respond(
        request, represent(request, provider), last_modified=provider.modified, headers=headers
    )


@router.endpoint(
    "GET", "/resource_providers/{uuid}", policy="placement:resource_providers:show",
    response=ProviderOut,
)
async def show_resource_provider(request: Request, uuid: str) -> Response:
    provider = await run_read(
        http.engine(request), lambda conn: ResourceProviderRepository(conn).get(uuid)
    )
    return http.respond(request, represent(request, provider), last_modified=provider.modified)


@router.endpoint(
    "DELETE", "/resource_providers/{uuid}", policy="placement:resource_providers:delete",
    status_code=204,
)
async def delete_resource_provider(request: Request, uuid: str) -> Response:
    await run_write(
        http.engine(request), lambda conn: ResourceProviderRepository(conn).delete(uuid)
    )
    return http.empty(204)


@router.endpoint(
    "PUT", "/resource_providers/{uuid}", policy="placement:resource_providers:update",
    request=UPDATE_BODIES, response=ProviderOut,
)
async def update_resource_provider(request: Request, uuid: str) -> Response:
    """Rename; at 1.14+ also set the parent (re-/un-parent from 1.37)."""
    version = http.version(request)
    engine = http.engine(request)
    await run_read(engine, lambda conn: ResourceProviderRepository(conn).get(uuid))
    body = await http.parse_body(request, update_schema(version))
    parent_given = (
        isinstance(body, ProviderUpdateV1_14) and "parent_provider_uuid" in body.model_fields_set
    )
    parent_uuid = getattr(body, "parent_provider_uuid", None)
    now = http.utcnow()
    provider, previous = await run_write(
        engine,
        lambda conn: ResourceProviderRepository(conn).update(
            uuid,
            body.name,
            parent_given=parent_given,
            parent_uuid=parent_uuid,
            allow_reparent=version >= REPARENT_VERSION,
            now=now,
        ),
    )
    # Reference quirk (spec §2.8, Q5): Last-Modified is the time of the
    # previous change, absent when the provider had never been updated.
    return http.respond(
        request,
        represent(request, provider),
        last_modified=previous,
        omit_last_modified=previous is None,
    )
