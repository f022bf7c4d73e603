"""Usages: ``GET /resource_providers/{uuid}/usages`` (and ``GET /usages``, 1.9+)."""

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.db.engine import run_read
from app.db.repositories import usages as usage_repo
from app.db.repositories.inventories import InventoryRepository
from app.db.repositories.providers_core import ProviderRow, get_provider
from app.exceptions import InvalidInput
from app.microversion import PROJECT_USAGES
from app.schemas.allocations import UsagesQueryV1_9, UsagesQueryV1_38
from app.schemas.validation import describe_validation_error

router = PlacementRouter(tags=["usages"])


class ProviderUsagesOut(BaseModel):
    resource_provider_generation: int
    usages: dict[str, int]


@router.endpoint(
    "GET", "/resource_providers/{uuid}/usages", policy="placement:resource_providers:usages",
    response=ProviderUsagesOut,
)
async def provider_usages(request: Request, uuid: str) -> Response:
    """One entry per class the provider has inventory of: the sum of its allocations."""

    async def work(conn: AsyncConnection) -> tuple[ProviderRow, dict[str, int]]:
        missing = f"No resource provider with uuid {uuid} found"
        provider = await get_provider(conn, uuid, f"{missing}: {missing}")
        return provider, await InventoryRepository(conn).usages(provider.id)

    provider, usages = await run_read(http.engine(request), work)
    return http.respond(
        request, {"resource_provider_generation": provider.generation, "usages": usages}
    )


# ---------------------------------------------------------------- GET /usages

CONSUMER_TYPES_VERSION = (1, 38)


@router.endpoint("GET", "/usages", policy="placement:usages", since=PROJECT_USAGES, authorize=False)
async def total_usages(request: Request) -> Response:
    """Usage totals of a project (and user); by consumer type from 1.38."""
    query = dict(request.query_params)
    # The policy sees the queried project, and runs before query validation.
    http.authorize(request, "placement:usages", {"project_id": query.get("project_id")})
    by_type = http.version(request) >= CONSUMER_TYPES_VERSION
    model = UsagesQueryV1_38 if by_type else UsagesQueryV1_9
    try:
        params = model.model_validate(query)
    except ValidationError as exc:
        raise InvalidInput(
            f"Invalid query string parameters: {describe_validation_error(exc)}"
        ) from None

    async def work(conn: AsyncConnection) -> object:
        if by_type:
            return await usage_repo.totals_by_consumer_type(
                conn, params.project_id, params.user_id,
                getattr(params, "consumer_type", None),
            )
        return await usage_repo.totals(conn, params.project_id, params.user_id)

    usages = await run_read(http.engine(request), work)
    return http.respond(request, {"usages": usages})
