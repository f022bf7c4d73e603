"""Resource classes: standard ones (synced at start-up) and ``CUSTOM_*`` ones."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.exceptions import UnknownResourceClass

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

    @property
    def is_custom(self) -> bool:
        return self.name.startswith(CUSTOM_PREFIX)


_rc = models.resource_classes


async def require_class_ids(conn: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    """Ids of the named classes, in the order named.

    :class:`UnknownResourceClass` names the first unknown one.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    rows = await conn.execute(select(_rc.c.name, _rc.c.id).where(_rc.c.name.in_(wanted)))
    found: dict[str, int] = {name: id_ for name, id_ in rows}
    for name in wanted:
        if name not in found:
            raise UnknownResourceClass(name=name)
    return {name: found[name] for name in wanted}


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
        # Exact, whatever the collation (MySQL's ignores case; the reference's
        # class names are compared in Python).
        return ResourceClassRow(*row) if row and row.name == name else None

    async def create(self, name: str, now: datetime) -> None:
        """Insert a custom class with the next free id at or above ``FIRST_CUSTOM_ID``."""
        highest = (await self.conn.execute(select(func.max(_rc.c.id)))).scalar()
        next_id = max(highest or 0, FIRST_CUSTOM_ID - 1) + 1
        await self.conn.execute(insert(_rc).values(id=next_id, name=name, created_at=now))

    async def rename(
        self, current: ResourceClassRow, new_name: str, now: datetime
    ) -> ResourceClassRow:
        await self.conn.execute(
            _rc.update().where(_rc.c.id == current.id).values(name=new_name, updated_at=now)
        )
        return ResourceClassRow(current.id, new_name, current.created_at, now)

    async def in_inventory(self, class_id: int) -> bool:
        """Some provider has inventory of the class."""
        row = (
            await self.conn.execute(
                select(models.inventories.c.id)
                .where(models.inventories.c.resource_class_id == class_id)
                .limit(1)
            )
        ).first()
        return row is not None

    async def delete(self, class_id: int) -> None:
        await self.conn.execute(_rc.delete().where(_rc.c.id == class_id))
