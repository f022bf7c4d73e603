"""``POST /reshaper`` (1.30+): move inventory and allocations in one transaction."""

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.db.repositories import allocations as alloc_repo
from app.db.repositories import inventories as inv_repo
from app.db.repositories.inventories import InventoryRecord, InventoryRepository
from app.db.repositories.providers_core import ProviderRow, find_provider
from app.exceptions import (
    CONCURRENT_UPDATE,
    INVENTORY_INUSE,
    PROVIDER_NOT_FOUND,
    Conflict,
    InvalidInput,
)
from app.microversion import RESHAPER
from app.routers.allocations import consumer_claim
from app.schemas.reshaper import ReshapeBody, parse_reshape
from app.settings import Settings

router = PlacementRouter(tags=["reshaper"])

RACED_MESSAGE = f"update conflict: {alloc_repo.PROVIDER_RACED}"


@router.endpoint(
    "POST", "/reshaper", policy="placement:reshaper:reshape", since=RESHAPER, request=ReshapeBody,
    status_code=204,
)
async def reshape(request: Request) -> Response:
    version = http.version(request)
    body = parse_reshape(await http.json_body(request), version)
    claims = [
        consumer_claim(request, consumer_uuid, entry, version)
        for consumer_uuid, entry in body.allocations.items()
    ]
    now = http.utcnow()
    settings: Settings = request.app.state.settings
    names = await alloc_repo.resolve_names(http.engine(request), claims, now=now,
                                           attempts=settings.serialization_retry_count)

    async def work(conn: AsyncConnection) -> None:
        providers: list[tuple[ProviderRow, dict[str, InventoryRecord]]] = []
        for rp_uuid, put in body.inventories.items():
            provider = await find_provider(conn, rp_uuid)
            if provider is None:
                raise InvalidInput(
                    f"Resource provider {rp_uuid} in inventories not found: "
                    f"No resource provider with uuid {rp_uuid} found",
                    code=PROVIDER_NOT_FOUND,
                )
            given = put.resource_provider_generation
            if given != provider.generation:
                raise Conflict(
                    f"resource provider generation conflict for provider {rp_uuid}: "
                    f"actual: {provider.generation}, given: {given}",
                    code=CONCURRENT_UPDATE,
                )
            providers.append((provider, put.records()))

        plan = await alloc_repo.prepare(conn, claims, names, now)
        inventory = InventoryRepository(conn)
        # Interim inventory: old records overlaid with the new ones, so that
        # classes moving away still exist while the allocations move.
        for provider, records in providers:
            if records:
                merged = {
                    row.resource_class: row.record
                    for row in await inventory.for_provider(provider.id)
                }
                merged.update(records)
                await inventory.replace_all(
                    provider, merged, check_capacity_rule=False, now=now
                )
        await plan.refresh(conn)
        await plan.apply(conn)
        # Final inventory, exactly as requested.
        for provider, records in providers:
            moved = plan.providers.get(provider.uuid)
            if moved is not None:
                provider.generation = moved.generation
            await inventory.replace_all(provider, records, check_capacity_rule=False, now=now)

    try:
        await alloc_repo.run_claim(
            http.engine(request),
            work,
            retries=settings.allocation_conflict_retry_count,
            attempts=settings.serialization_retry_count,
            message=RACED_MESSAGE,
        )
    except (alloc_repo.UnknownResourceClass, inv_repo.UnknownResourceClass) as exc:
        raise InvalidInput(f"malformed reshaper data: {exc.message}") from None
    except inv_repo.InventoryInUse as exc:
        raise Conflict(f"update conflict: {exc.message}", code=INVENTORY_INUSE) from None
    except inv_repo.ProviderRace as exc:
        raise Conflict(f"update conflict: {exc.message}", code=CONCURRENT_UPDATE) from None
    return http.empty(204)
