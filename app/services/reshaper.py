"""The reshaper: move inventory and allocations in one transaction.

``POST /reshaper`` replaces the complete inventory of some providers and the
allocations of some consumers at once, so that resources can move between
providers (a root's VCPU to a new NUMA child) while allocated. It runs as one
claim (:meth:`Database.claim`):

1. every provider exists and is at the generation the client saw;
2. the allocations are read and checked as any claim's (:func:`prepare`);
3. interim inventory: each provider's old records overlaid with the new ones,
   so that classes moving away still exist while the allocations move;
4. the allocations are written against the interim inventory (capacity
   checked as any claim's, after re-reading generations and usage);
5. final inventory, exactly as requested (in use -> 409).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories.inventories import InventoryRepository
from app.exceptions import (
    INVENTORY_INUSE,
    PROVIDER_RACED,
    InventoryInUse,
    MalformedReshape,
    ReshapeConflict,
    ReshapeGenerationConflict,
    ReshapeProviderNotFound,
    UnknownResourceClass,
)
from app.microversion import Version
from app.records import InventoryRecord, ProviderRow
from app.services.claims import claim_from_body, lock_providers, names_of, prepare
from app.services.lookups import require_provider
from app.settings import Settings


@dataclass(frozen=True)
class NewInventory:
    """A provider's complete new inventory and the generation the client saw."""

    generation: int
    records: dict[str, InventoryRecord]


def _raced() -> ReshapeConflict:
    return ReshapeConflict(reason=PROVIDER_RACED)


async def reshape(
    db: Database,
    inventories: dict[str, NewInventory],
    allocations: dict[str, Any],
    *,
    version: Version,
    settings: Settings,
    now: datetime,
) -> None:
    """Replace the providers' inventories and the consumers' allocations, all
    or nothing (see the module docstring for the order). ``allocations``: the
    validated ``POST /allocations`` entries by consumer uuid."""
    claims = [
        claim_from_body(consumer_uuid, body, version, settings)
        for consumer_uuid, body in allocations.items()
    ]
    names = await names_of(db, claims, now)

    async def work(conn: AsyncConnection) -> None:
        await lock_providers(conn, claims, inventories)
        providers: list[tuple[ProviderRow, dict[str, InventoryRecord]]] = []
        for rp_uuid, new in inventories.items():
            provider = await require_provider(
                conn, rp_uuid, ReshapeProviderNotFound(uuid=rp_uuid))
            if new.generation != provider.generation:
                raise ReshapeGenerationConflict(
                    uuid=rp_uuid, actual=provider.generation, given=new.generation)
            providers.append((provider, new.records))

        plan = await prepare(conn, claims, names, now)
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
                await inventory.replace_all(provider, merged, now=now)
        await plan.refresh(conn)
        await plan.apply(conn)
        # Final inventory, exactly as requested.
        for provider, records in providers:
            moved = plan.providers.get(provider.uuid)
            if moved is not None:
                provider.generation = moved.generation
            await inventory.replace_all(provider, records, now=now)

    try:
        await db.claim(work, exhausted=_raced)
    except UnknownResourceClass as exc:
        raise MalformedReshape(reason=exc.message) from None
    except InventoryInUse as exc:
        raise ReshapeConflict(reason=exc.message, code=INVENTORY_INUSE) from None
