"""Resource classes: standard ones are read-only, ``CUSTOM_*`` ones belong to clients."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories.resource_classes import ResourceClassRepository, ResourceClassRow
from app.exceptions import (
    ResourceClassExists,
    ResourceClassInUse,
    ResourceClassNameTaken,
    ResourceClassNotFound,
    StandardResourceClassNotDeletable,
    StandardResourceClassNotUpdatable,
)


async def _require(repo: ResourceClassRepository, name: str) -> ResourceClassRow:
    found = await repo.find(name)
    if found is None:
        raise ResourceClassNotFound(name=name)
    return found


async def list_resource_classes(db: Database) -> list[ResourceClassRow]:
    """Every class, standard ones first (by id)."""
    return await db.read(lambda c: ResourceClassRepository(c).all())


async def resource_class(db: Database, name: str) -> ResourceClassRow:
    """The class called ``name`` (404 if there is none)."""
    return await db.read(lambda c: _require(ResourceClassRepository(c), name))


async def create_resource_class(db: Database, name: str, now: datetime) -> None:
    """Create a custom class (409 if the name is taken)."""

    async def write(conn: AsyncConnection) -> None:
        repo = ResourceClassRepository(conn)
        if await repo.find(name) is not None:
            raise ResourceClassExists(name=name)
        await repo.create(name, now)

    await db.write(write)


async def ensure_resource_class(db: Database, name: str, now: datetime) -> bool:
    """Create the custom class unless it exists; True if this call created it."""

    async def write(conn: AsyncConnection) -> bool:
        repo = ResourceClassRepository(conn)
        if await repo.find(name) is not None:
            return False
        await repo.create(name, now)
        return True

    return await db.write(write)


async def rename_resource_class(
    db: Database, name: str, new_name: str, now: datetime
) -> ResourceClassRow:
    """Rename a custom class (1.2-1.6): 404, then 400 for a standard one, then 409."""

    async def write(conn: AsyncConnection) -> ResourceClassRow:
        repo = ResourceClassRepository(conn)
        current = await _require(repo, name)
        if not current.is_custom:
            raise StandardResourceClassNotUpdatable(name=name)
        if await repo.find(new_name) is not None:
            raise ResourceClassNameTaken(name=new_name)
        return await repo.rename(current, new_name, now)

    return await db.write(write)


async def delete_resource_class(db: Database, name: str) -> None:
    """Delete a custom class no inventory uses: 404, then 400 (standard), then 409."""

    async def write(conn: AsyncConnection) -> None:
        repo = ResourceClassRepository(conn)
        current = await _require(repo, name)
        if not current.is_custom:
            raise StandardResourceClassNotDeletable(name=name)
        if await repo.in_inventory(current.id):
            raise ResourceClassInUse(name=name)
        await repo.delete(current.id)

    await db.write(write)
