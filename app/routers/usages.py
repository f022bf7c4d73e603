"""Usages: ``GET /resource_providers/{uuid}/usages`` (and ``GET /usages``, 1.9+)."""

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app import http
from app.db.engine import run_read
from app.db.repositories.inventories import InventoryRepository
from app.db.repositories.providers_core import ProviderRow, get_provider

router = APIRouter(tags=["usages"])


class ProviderUsagesOut(BaseModel):
    resource_provider_generation: int
    usages: dict[str, int]


@router.get("/resource_providers/{uuid}/usages", response_model=ProviderUsagesOut)
async def provider_usages(request: Request, uuid: str) -> Response:
    """One entry per class the provider has inventory of: the sum of its allocations."""
    http.check_accept(request)
    http.authorize(request, "placement:resource_providers:usages")

    async def work(conn: AsyncConnection) -> tuple[ProviderRow, dict[str, int]]:
        missing = f"No resource provider with uuid {uuid} found"
        provider = await get_provider(conn, uuid, f"{missing}: {missing}")
        return provider, await InventoryRepository(conn).usages(provider.id)

    provider, usages = await run_read(http.engine(request), work)
    return http.respond(
        request, {"resource_provider_generation": provider.generation, "usages": usages}
    )
