"""Traits (standard ones synced at start-up, ``CUSTOM_*`` ones) and provider traits."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import insert_ignoring_duplicates
from app.exceptions import TraitNotFound

CUSTOM_PREFIX = "CUSTOM_"

_trait = models.traits
_rp_trait = models.resource_provider_traits
_COLUMNS = (_trait.c.id, _trait.c.name, _trait.c.created_at, _trait.c.updated_at)


@dataclass(frozen=True)
class TraitRow:
    id: int
    name: str
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def modified(self) -> datetime | None:
        return self.updated_at or self.created_at


def _storable(names: Iterable[str]) -> list[str]:
    # A NUL cannot be in a stored name (PostgreSQL rejects it even in a comparison).
    return [name for name in names if "\x00" not in name]


class TraitRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def filtered(
        self,
        *,
        names: list[str] | None = None,
        prefix: str | None = None,
        associated: bool | None = None,
    ) -> list[TraitRow]:
        """Traits matching every given filter.

        ``prefix`` is a SQL ``LIKE`` prefix, as in the reference: ``_`` and
        ``%`` are wildcards, and the database decides case sensitivity.
        """
        query = select(*_COLUMNS).order_by(_trait.c.name)
        if names is not None:
            query = query.where(_trait.c.name.in_(_storable(names)))
        if prefix is not None:
            if "\x00" in prefix:
                return []
            query = query.where(_trait.c.name.like(prefix + "%"))
        if associated is not None:
            used = exists().where(_rp_trait.c.trait_id == _trait.c.id)
            query = query.where(used if associated else ~used)
        rows = await self.conn.execute(query)
        return [TraitRow(*row) for row in rows]

    async def find(self, name: str) -> TraitRow | None:
        if "\x00" in name:
            return None
        row = (await self.conn.execute(select(*_COLUMNS).where(_trait.c.name == name))).first()
        # Exact, whatever the collation (MySQL's ignores case; the reference's does not here).
        return TraitRow(*row) if row and row.name == name else None

    async def get(self, name: str) -> TraitRow:
        row = await self.find(name)
        if row is None:
            raise TraitNotFound(name=name)
        return row

    async def ensure(self, name: str, now: datetime) -> tuple[TraitRow | None, bool]:
        """The trait, created if missing; ``(row, created)``.

        The row is ``None`` only when a concurrent request created it first
        and it is not visible to this transaction.
        """
        existing = await self.find(name)
        if existing is not None:
            return existing, False
        result = await self.conn.execute(
            insert_ignoring_duplicates(self.conn, _trait).values(name=name, created_at=now)
        )
        if result.rowcount == 1:
            return await self.find(name), True
        return await self.find(name), False

    async def in_use(self, trait_id: int) -> bool:
        """Whether any provider has the trait."""
        row = (
            await self.conn.execute(
                select(_rp_trait.c.trait_id).where(_rp_trait.c.trait_id == trait_id).limit(1)
            )
        ).first()
        return row is not None

    async def delete(self, trait_id: int) -> None:
        await self.conn.execute(delete(_trait).where(_trait.c.id == trait_id))

    async def by_names(self, names: Iterable[str]) -> dict[str, TraitRow]:
        """The named traits that exist, by name."""
        wanted = _storable(set(names))
        if not wanted:
            return {}
        rows = await self.conn.execute(select(*_COLUMNS).where(_trait.c.name.in_(wanted)))
        return {row.name: TraitRow(*row) for row in rows}

    async def named_and_held(
        self, names: Iterable[str], provider_id: int
    ) -> tuple[dict[str, TraitRow], set[int]]:
        """:meth:`by_names` and the ids of the provider's traits, in one round trip."""
        wanted = _storable(set(names))
        held = (
            select(literal_column("0").label("named"), *_COLUMNS)
            .select_from(_trait.join(_rp_trait, _rp_trait.c.trait_id == _trait.c.id))
            .where(_rp_trait.c.resource_provider_id == provider_id)
        )
        query = held if not wanted else union_all(
            held,
            select(literal_column("1").label("named"), *_COLUMNS)
            .where(_trait.c.name.in_(wanted)),
        )
        found: dict[str, TraitRow] = {}
        current: set[int] = set()
        for named, *row in await self.conn.execute(query):
            if named:
                found[row[1]] = TraitRow(*row)
            else:
                current.add(row[0])
        return found, current

    async def for_provider(self, provider_id: int) -> list[TraitRow]:
        rows = await self.conn.execute(
            select(*_COLUMNS)
            .select_from(_trait.join(_rp_trait, _rp_trait.c.trait_id == _trait.c.id))
            .where(_rp_trait.c.resource_provider_id == provider_id)
            .order_by(_trait.c.name)
        )
        return [TraitRow(*row) for row in rows]

    async def remove_from_provider(self, provider_id: int, trait_ids: Iterable[int]) -> None:
        await self.conn.execute(
            delete(_rp_trait).where(
                _rp_trait.c.resource_provider_id == provider_id,
                _rp_trait.c.trait_id.in_(list(trait_ids)),
            )
        )

    async def add_to_provider(
        self, provider_id: int, trait_ids: Iterable[int], now: datetime
    ) -> None:
        await self.conn.execute(
            insert_ignoring_duplicates(self.conn, _rp_trait),
            [
                {"resource_provider_id": provider_id, "trait_id": trait_id, "created_at": now}
                for trait_id in sorted(trait_ids)
            ],
        )

    async def clear_provider(self, provider_id: int) -> int:
        """Remove every trait of the provider; how many it had."""
        result = await self.conn.execute(
            delete(_rp_trait).where(_rp_trait.c.resource_provider_id == provider_id)
        )
        return result.rowcount
