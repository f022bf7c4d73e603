"""Resource classes: standard ones (synced at start-up) and ``CUSTOM_*`` ones."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.exceptions import Conflict, InvalidInput, NotFound

CUSTOM_PREFIX = "CUSTOM_"
# Custom classes get ids from here up, clear of the standard ones.
FIRST_CUSTOM_ID = 10000


@dataclass(frozen=True)
class ResourceClassRow:
    id: int
    name: str
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def modified(self) -> datetime | None:
        return self.updated_at or self.created_at


_rc = models.resource_classes


class ResourceClassRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def all(self) -> list[ResourceClassRow]:
        rows = await self.conn.execute(
            select(_rc.c.id, _rc.c.name, _rc.c.created_at, _rc.c.updated_at).order_by(_rc.c.id)
        )
        return [ResourceClassRow(*row) for row in rows]

    async def find(self, name: str) -> ResourceClassRow | None:
        row = (
            await self.conn.execute(
                select(_rc.c.id, _rc.c.name, _rc.c.created_at, _rc.c.updated_at).where(
                    _rc.c.name == name
                )
            )
        ).first()
        return ResourceClassRow(*row) if row else None

    async def get(self, name: str) -> ResourceClassRow:
        row = await self.find(name)
        if row is None:
            raise NotFound(f"No such resource class {name}.")
        return row

    async def ids_by_name(self, names: set[str] | list[str]) -> dict[str, int]:
        """Ids of the named classes that exist (unknown names are left out)."""
        if not names:
            return {}
        rows = await self.conn.execute(
            select(_rc.c.name, _rc.c.id).where(_rc.c.name.in_(list(names)))
        )
        return {name: id_ for name, id_ in rows}

    async def names_by_id(self) -> dict[int, str]:
        rows = await self.conn.execute(select(_rc.c.id, _rc.c.name))
        return {id_: name for id_, name in rows}

    async def create(self, name: str, now: datetime) -> None:
        if await self.find(name) is not None:
            raise Conflict(f"Conflicting resource class already exists: {name}")
        highest = (await self.conn.execute(select(func.max(_rc.c.id)))).scalar()
        next_id = max(highest or 0, FIRST_CUSTOM_ID - 1) + 1
        await self.conn.execute(insert(_rc).values(id=next_id, name=name, created_at=now))

    async def rename(self, name: str, new_name: str, now: datetime) -> ResourceClassRow:
        current = await self.get(name)
        if not current.name.startswith(CUSTOM_PREFIX):
            raise InvalidInput(f"Cannot update standard resource class {name}")
        if await self.find(new_name) is not None:
            raise Conflict(f"Resource class already exists: {new_name}")
        await self.conn.execute(
            _rc.update().where(_rc.c.id == current.id).values(name=new_name, updated_at=now)
        )
        return ResourceClassRow(current.id, new_name, current.created_at, now)

    async def delete(self, name: str) -> None:
        current = await self.get(name)
        if not current.name.startswith(CUSTOM_PREFIX):
            raise InvalidInput(
                f"Error in delete resource class: Cannot delete standard resource class {name}."
            )
        in_use = (
            await self.conn.execute(
                select(models.inventories.c.id)
                .where(models.inventories.c.resource_class_id == current.id)
                .limit(1)
            )
        ).first()
        if in_use is not None:
            raise Conflict(
                f"Error in delete resource class: Cannot delete resource class {name}. "
                "Class is in use in inventory."
            )
        await self.conn.execute(_rc.delete().where(_rc.c.id == current.id))
