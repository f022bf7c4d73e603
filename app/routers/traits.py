"""``/traits``, ``/traits/{name}`` and ``/resource_providers/{uuid}/traits`` (1.6+)."""

from fastapi import Request
from starlette.responses import Response

from app.api import http, parameters
from app.api.deps import DatabaseDep, ReadDatabaseDep
from app.api.routing import PlacementRouter
from app.exceptions import BadTraitAssociatedFilter, BadTraitNameFilter
from app.microversion import TRAITS
from app.query import check_query_schema
from app.schemas.traits import ProviderTraits, ProviderTraitsBody, TraitList
from app.services import traits as service
from app.services.traits import ProviderTraitNames, TraitFilters, TraitNames

router = PlacementRouter(tags=["traits"])

PROVIDER_TRAITS = "/resource_providers/{uuid}/traits"


def _traits_response(request: Request, traits: TraitNames) -> Response:
    return http.respond(request, {"traits": traits.names}, last_modified=traits.modified)


def _provider_traits_response(request: Request, found: ProviderTraitNames) -> Response:
    body = {"traits": found.traits.names, "resource_provider_generation": found.generation}
    return http.respond(request, body, last_modified=found.traits.modified)


# The reference's query schema of GET /traits (its 400s print it).
TRAITS_QUERY_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "associated": {"type": "string"}},
    "additionalProperties": False,
}


def _list_filters(request: Request) -> TraitFilters:
    """The filters of ``GET /traits`` (400 on a malformed query)."""
    params = dict(request.query_params)  # a repeated key: the last value counts
    check_query_schema(params, TRAITS_QUERY_SCHEMA)
    names: list[str] | None = None
    prefix: str | None = None
    associated: bool | None = None
    if "name" in params:
        operator, sep, value = params["name"].partition(":")
        if not sep:
            raise BadTraitNameFilter(value=params["name"])
        # Any other operator filters nothing, as in the reference.
        if operator == "in":
            names = value.split(",")
        elif operator == "startswith":
            prefix = value
    if "associated" in params:
        flag = params["associated"].lower()
        if flag not in ("true", "false"):
            raise BadTraitAssociatedFilter()
        associated = flag == "true"
    return TraitFilters(names=names, prefix=prefix, associated=associated)


@router.endpoint("GET", "/traits", policy="placement:traits:list", since=TRAITS, response=TraitList,
                 query=parameters.traits())
async def list_traits(request: Request, db: ReadDatabaseDep) -> Response:
    """List traits, optionally filtered by name and association."""
    traits = await service.list_traits(db, _list_filters(request))
    return _traits_response(request, traits)


@router.endpoint(
    "GET", "/traits/{name}", policy="placement:traits:show", since=TRAITS, status_code=204,
    accept_json=False,
)
async def show_trait(request: Request, name: str, db: DatabaseDep) -> Response:
    """Check that a trait exists."""
    created_at = await service.trait_created_at(db, name)
    return http.empty(204, http.cache_headers(request, created_at))


@router.endpoint(
    "PUT", "/traits/{name}", policy="placement:traits:update", since=TRAITS, status_code=201,
    also=(204,),
)
async def create_trait(request: Request, name: str, db: DatabaseDep) -> Response:
    """Create-or-verify a custom trait: 201 created, 204 already there."""
    ensured = await service.ensure_custom_trait(db, name, http.utcnow())
    headers = {"location": http.location(request, f"/traits/{name}")}
    headers.update(http.cache_headers(request, ensured.created_at))
    return http.empty(201 if ensured.created else 204, headers)


@router.endpoint(
    "DELETE", "/traits/{name}", policy="placement:traits:delete", since=TRAITS, status_code=204,
)
async def delete_trait(name: str, db: DatabaseDep) -> Response:
    """Delete a custom trait no provider has."""
    await service.delete_custom_trait(db, name)
    return http.empty(204)


@router.endpoint(
    "GET", PROVIDER_TRAITS, policy="placement:resource_providers:traits:list",
    since=TRAITS, response=ProviderTraits,
)
async def list_provider_traits(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """List a resource provider's traits."""
    return _provider_traits_response(request, await service.provider_traits(db, uuid))


@router.endpoint(
    "PUT", PROVIDER_TRAITS, policy="placement:resource_providers:traits:update",
    since=TRAITS, request=ProviderTraitsBody, response=ProviderTraits,
)
async def replace_provider_traits(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Replace the provider's traits; the body is checked before the provider."""
    body = await http.parse_body(request, ProviderTraitsBody)
    found = await service.replace_provider_traits(
        db, uuid, body.traits, body.resource_provider_generation, http.utcnow()
    )
    return _provider_traits_response(request, found)


@router.endpoint(
    "DELETE", PROVIDER_TRAITS, policy="placement:resource_providers:traits:delete",
    since=TRAITS, status_code=204,
)
async def delete_provider_traits(uuid: str, db: DatabaseDep) -> Response:
    """Remove every trait of a resource provider."""
    await service.clear_provider_traits(db, uuid, http.utcnow())
    return http.empty(204)
