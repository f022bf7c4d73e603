"""``/traits``, ``/traits/{name}`` and ``/resource_providers/{uuid}/traits`` (1.6+)."""

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.db.engine import run_read, run_write
from app.db.repositories.providers_core import get_provider
from app.db.repositories.traits import TraitRepository, TraitRow
from app.exceptions import InvalidInput
from app.microversion import TRAITS
from app.query import check_allowed_keys
from app.schemas.traits import (
    INVALID_CUSTOM_TRAIT,
    ProviderTraits,
    ProviderTraitsBody,
    TraitList,
    TraitListQuery,
    is_custom_trait_name,
)

router = PlacementRouter(tags=["traits"])

BAD_NAME_FILTER = (
    "Badly formatted name parameter. Expected name query string parameter in form: "
    '?name=[in|startswith]:[name1,name2|prefix]. Got: "{value}"'
)
BAD_ASSOCIATED = 'The query parameter "associated" only accepts "true" or "false"'


def _provider_missing(uuid: str) -> str:
    # The reference repeats the lookup's own message after its prefix here.
    message = f"No resource provider with uuid {uuid} found"
    return f"{message}: {message}"


def _traits_response(
    request: Request, traits: list[TraitRow], extra: dict[str, object] | None = None
) -> Response:
    body: dict[str, object] = {"traits": [trait.name for trait in traits]}
    body.update(extra or {})
    return http.respond(
        request, body, last_modified=http.max_time(*(trait.modified for trait in traits))
    )


@dataclass
class TraitFilters:
    names: list[str] | None = None
    prefix: str | None = None
    associated: bool | None = None


def _list_filters(request: Request) -> TraitFilters:
    """The filters of ``GET /traits`` (400 on a malformed query)."""
    check_allowed_keys(request.query_params.keys(), TraitListQuery.model_fields)
    params = dict(request.query_params)  # a repeated key: the last value counts
    filters = TraitFilters()
    if "name" in params:
        operator, sep, value = params["name"].partition(":")
        if not sep:
            raise InvalidInput(BAD_NAME_FILTER.format(value=params["name"]))
        # Any other operator filters nothing, as in the reference.
        if operator == "in":
            filters.names = value.split(",")
        elif operator == "startswith":
            filters.prefix = value
    if "associated" in params:
        associated = params["associated"].lower()
        if associated not in ("true", "false"):
            raise InvalidInput(BAD_ASSOCIATED)
        filters.associated = associated == "true"
    return filters


@router.endpoint("GET", "/traits", policy="placement:traits:list", since=TRAITS, response=TraitList)
async def list_traits(request: Request) -> Response:
    filters = _list_filters(request)
    traits = await run_read(
        http.engine(request),
        lambda c: TraitRepository(c).filtered(
            names=filters.names, prefix=filters.prefix, associated=filters.associated
        ),
    )
    return _traits_response(request, traits)


@router.endpoint(
    "GET", "/traits/{name}", policy="placement:traits:show", since=TRAITS, status_code=204,
    accept_json=False,
)
async def show_trait(request: Request, name: str) -> Response:
    trait = await run_read(http.engine(request), lambda c: TraitRepository(c).get(name))
    return http.empty(204, http.cache_headers(request, trait.created_at))


@router.endpoint(
    "PUT", "/traits/{name}", policy="placement:traits:update", since=TRAITS, status_code=201,
)
async def create_trait(request: Request, name: str) -> Response:
    """Create-or-verify a custom trait: 201 created, 204 already there."""
    if not is_custom_trait_name(name):
        raise InvalidInput(INVALID_CUSTOM_TRAIT)
    now = http.utcnow()
    trait, created = await run_write(
        http.engine(request), lambda c: TraitRepository(c).ensure(name, now)
    )
    headers = {"location": http.location(request, f"/traits/{name}")}
    headers.update(http.cache_headers(request, trait.created_at if trait else None))
    return http.empty(201 if created else 204, headers)


@router.endpoint(
    "DELETE", "/traits/{name}", policy="placement:traits:delete", since=TRAITS, status_code=204,
)
async def delete_trait(request: Request, name: str) -> Response:
    await run_write(http.engine(request), lambda c: TraitRepository(c).delete(name))
    return http.empty(204)


@router.endpoint(
    "GET", "/resource_providers/{uuid}/traits", policy="placement:resource_providers:traits:list",
    since=TRAITS, response=ProviderTraits,
)
async def list_provider_traits(request: Request, uuid: str) -> Response:

    async def read(conn: AsyncConnection) -> tuple[list[TraitRow], int]:
        provider = await get_provider(conn, uuid, _provider_missing(uuid))
        return await TraitRepository(conn).for_provider(provider.id), provider.generation

    traits, generation = await run_read(http.engine(request), read)
    return _traits_response(request, traits, {"resource_provider_generation": generation})


@router.endpoint(
    "PUT", "/resource_providers/{uuid}/traits",
    policy="placement:resource_providers:traits:update", since=TRAITS, request=ProviderTraitsBody,
    response=ProviderTraits,
)
async def replace_provider_traits(request: Request, uuid: str) -> Response:
    """Replace the provider's traits; the body is checked before the provider."""
    body = await http.parse_body(request, ProviderTraitsBody)
    now = http.utcnow()

    async def write(conn: AsyncConnection) -> tuple[list[TraitRow], int]:
        provider = await get_provider(conn, uuid)
        return await TraitRepository(conn).replace_for_provider(
            provider, body.traits, body.resource_provider_generation, now
        )

    traits, generation = await run_write(http.engine(request), write)
    return _traits_response(request, traits, {"resource_provider_generation": generation})


@router.endpoint(
    "DELETE", "/resource_providers/{uuid}/traits",
    policy="placement:resource_providers:traits:delete", since=TRAITS, status_code=204,
)
async def delete_provider_traits(request: Request, uuid: str) -> Response:
    now = http.utcnow()

    async def write(conn: AsyncConnection) -> None:
        provider = await get_provider(conn, uuid)
        await TraitRepository(conn).clear_for_provider(provider, now)

    await run_write(http.engine(request), write)
    return http.empty(204)
