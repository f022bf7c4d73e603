"""Inventories of a resource provider: the capacity rule, generations, wordings.

Every write is one unit of work, checked in the reference's order: provider
lookup (404) -> body (400, judged by the router, reported here) -> generation
the client saw (409) -> capacity rule (400) -> repository (classes, in use,
generation compare-and-swap). The repository raises the reference's bare
texts; each endpoint wraps them in its own prefix and status, as the
reference does.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories import provider_setup
from app.db.repositories.inventories import InventoryNotFound, InventoryRepository, InventoryRow
from app.exceptions import (
    CannotCreateInventory,
    CannotDeleteInventoryOfClass,
    CannotUpdateInventory,
    InvalidInput,
    InventoryCreateConflict,
    InventoryExists,
    InventoryGenerationConflict,
    InventoryInUse,
    InventoryOfClassNotFound,
    InventoryProviderNotFound,
    InventoryUpdateConflict,
    NoInventoryToDelete,
    NoInventoryToUpdate,
    PlacementError,
    ReservedAboveTotal,
    ReservedNotBelowTotal,
    ResourceClassNotFound,
    UnknownClassInInventory,
    UnknownClassToDelete,
    UnknownResourceClass,
    judged,
)
from app.microversion import RESERVED_MAY_EQUAL_TOTAL, Version
from app.records import InventoryRecord, ProviderRow
from app.schemas.inventories import InventoriesPut, InventoryCreate, InventoryUpdate
from app.services.lookups import require_provider

BodyT = TypeVar("BodyT")


@dataclass(frozen=True)
class ProviderInventories:
    generation: int
    inventories: list[InventoryRow]


@dataclass(frozen=True)
class ProviderInventory:
    generation: int
    inventory: InventoryRow


@dataclass(frozen=True)
class Written(Generic[BodyT]):
    """A successful write: the provider, its new generation and the body as judged."""

    provider_uuid: str
    generation: int
    body: BodyT


def capacity_error(
    records: Mapping[str, InventoryRecord], provider_uuid: str, version: Version
) -> InvalidInput | None:
    """The capacity rule of every inventory write except the reshaper's.

    Below 1.26 capacity must be > 0, from 1.26 on >= 0 (``reserved`` may equal
    ``total``); the first record (in mapping order) that fails is reported.
    """
    may_equal_total = version >= RESERVED_MAY_EQUAL_TOTAL
    for name, record in records.items():
        cap = record.capacity
        if may_equal_total and cap < 0:
            return ReservedAboveTotal(resource_class=name, uuid=provider_uuid)
        if not may_equal_total and cap <= 0:
            return ReservedNotBelowTotal(resource_class=name, uuid=provider_uuid)
    return None


def _check_generation(provider: ProviderRow, seen: int) -> None:
    if seen != provider.generation:
        raise InventoryGenerationConflict()


# ---------------------------------------------------------------------- reads


async def list_inventories(db: Database, uuid: str) -> ProviderInventories:
    """The provider's inventories (by class id) and generation."""

    async def read(conn: AsyncConnection) -> ProviderInventories:
        provider = await require_provider(conn, uuid, missing=InventoryProviderNotFound(uuid=uuid))
        rows = await InventoryRepository(conn).for_provider(provider.id)
        return ProviderInventories(provider.generation, rows)

    return await db.read(read)


async def show_inventory(db: Database, uuid: str, resource_class: str) -> ProviderInventory:
    """One inventory of the provider (404 for an unknown class too)."""

    async def read(conn: AsyncConnection) -> ProviderInventory:
        provider = await require_provider(conn, uuid, missing=InventoryProviderNotFound(uuid=uuid))
        row = await InventoryRepository(conn).find(provider.id, resource_class)
        if row is None:
            raise InventoryOfClassNotFound(resource_class=resource_class, uuid=uuid)
        return ProviderInventory(provider.generation, row)

    return await db.read(read)


# --------------------------------------------------------------------- writes


async def create_inventory(
    db: Database,
    uuid: str,
    body: InventoryCreate | PlacementError,
    *,
    version: Version,
    now: datetime,
) -> Written[InventoryCreate]:
    """Add inventory of a class the provider does not have yet (a generation in the
    body is ignored)."""

    async def write(conn: AsyncConnection) -> Written[InventoryCreate]:
        provider = await require_provider(conn, uuid)
        create = judged(body)
        record = create.record()
        invalid = capacity_error({create.resource_class: record}, provider.uuid, version)
        if invalid is not None:
            raise CannotCreateInventory(uuid=provider.uuid, reason=invalid.message)
        try:
            generation = await InventoryRepository(conn).add(
                provider, create.resource_class, record, now=now
            )
        except UnknownResourceClass as exc:
            raise CannotCreateInventory(uuid=provider.uuid, reason=exc.message) from None
        except InventoryExists as exc:
            raise InventoryCreateConflict(reason=exc.message) from None
        return Written(provider.uuid, generation, create)

    return await db.guarded_write(write)


async def replace_inventories(
    db: Database,
    uuid: str,
    body: InventoriesPut | PlacementError,
    *,
    version: Version,
    now: datetime,
) -> Written[InventoriesPut]:
    """Make the body's inventories the provider's complete inventory."""

    async def write(conn: AsyncConnection) -> Written[InventoriesPut]:
        provider = await require_provider(conn, uuid)
        put = judged(body)
        _check_generation(provider, put.resource_provider_generation)
        records = put.records()
        invalid = capacity_error(records, provider.uuid, version)
        if invalid is not None:
            raise CannotUpdateInventory(uuid=provider.uuid, reason=invalid.message)
        try:
            generation = await InventoryRepository(conn).replace_all(provider, records, now=now)
        except UnknownResourceClass as exc:
            raise UnknownClassInInventory(uuid=provider.uuid, reason=exc.message) from None
        except InventoryInUse as exc:
            raise InventoryUpdateConflict(reason=exc.message, code=exc.code) from None
        return Written(provider.uuid, generation, put)

    if not isinstance(body, PlacementError):
        records = body.records()
        if capacity_error(records, uuid, version) is None:
            generation = await provider_setup.replace_inventories(
                db, uuid, body.resource_provider_generation, records, now)
            if generation is not None:
                return Written(uuid, generation, body)
    return await db.guarded_write(write)


async def delete_inventories(db: Database, uuid: str, now: datetime) -> None:
    """Remove all of the provider's inventory (1.5+); none of it may be in use."""

    async def write(conn: AsyncConnection) -> None:
        provider = await require_provider(conn, uuid)
        await InventoryRepository(conn).delete_all(provider, now=now)
        # InventoryInUse is answered as the repository words it.

    await db.guarded_write(write)


async def update_inventory(
    db: Database,
    uuid: str,
    resource_class: str,
    body: InventoryUpdate | PlacementError,
    *,
    version: Version,
    now: datetime,
) -> Written[InventoryUpdate]:
    """Replace the fields of one existing inventory."""

    async def write(conn: AsyncConnection) -> Written[InventoryUpdate]:
        provider = await require_provider(conn, uuid)
        update = judged(body)
        _check_generation(provider, int(update.resource_provider_generation or 0))
        record = update.record()
        invalid = capacity_error({resource_class: record}, provider.uuid, version)
        if invalid is not None:
            raise CannotUpdateInventory(uuid=provider.uuid, reason=invalid.message)
        try:
            generation = await InventoryRepository(conn).update_one(
                provider, resource_class, record, now=now
            )
        except UnknownResourceClass:
            raise ResourceClassNotFound(name=resource_class) from None
        except InventoryNotFound:
            raise NoInventoryToUpdate(uuid=provider.uuid, resource_class=resource_class) from None
        return Written(provider.uuid, generation, update)

    return await db.guarded_write(write)


async def delete_inventory(db: Database, uuid: str, resource_class: str, now: datetime) -> None:
    """Remove one class of the provider's inventory; it may not be in use."""

    async def write(conn: AsyncConnection) -> None:
        provider = await require_provider(conn, uuid)
        try:
            await InventoryRepository(conn).delete_one(provider, resource_class, now=now)
        except UnknownResourceClass:
            raise UnknownClassToDelete(resource_class=resource_class) from None
        except InventoryNotFound:
            raise NoInventoryToDelete(resource_class=resource_class) from None
        except InventoryInUse as exc:
            # Reference quirk Q3: in-use answers concurrent_update here.
            raise CannotDeleteInventoryOfClass(
                resource_class=resource_class, reason=exc.message
            ) from None

    await db.guarded_write(write)
