"""Inventories of resource providers, and per-provider usages: rows only.

All inventory writes go through :class:`InventoryRepository`, which works on a
connection the caller opened (a unit of work of the inventories service), so
other units of work — the reshaper in particular — can change inventory inside
their own transaction. Every write bumps the provider generation with
compare-and-swap (``providers_core.bump_generation``).

The rules that depend on the request (the capacity rule at the microversion,
the generation the client saw) are the inventories service's. Failures here are
catalogue entries with the reference's bare text (re-exported below for the
callers that catch them); services wrap them in their endpoint's prefix.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, literal_column, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.providers_core import bump_generation
from app.db.repositories.resource_classes import require_class_ids
from app.exceptions import (
    InventoryExists,
    InventoryInUse,
    UnknownResourceClass,
)
from app.records import InventoryRecord, ProviderRow

_inv = models.inventories
_alloc = models.allocations
_rc = models.resource_classes


class InventoryNotFound(Exception):
    """The provider has no inventory of a (known) class; the service words it."""

    def __init__(self, resource_class: str) -> None:
        super().__init__(resource_class)
        self.resource_class = resource_class


# ------------------------------------------------------------------- records


@dataclass(frozen=True)
class InventoryRow:
    """One stored inventory, as read back."""

    resource_class: str
    resource_class_id: int
    record: InventoryRecord
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def modified(self) -> datetime | None:
        return self.updated_at or self.created_at

    def as_dict(self) -> dict[str, float]:
        """The GET representation: ``allocation_ratio`` always a float."""
        data = self.record.as_dict()
        data["allocation_ratio"] = float(self.record.allocation_ratio)
        return data


def _row_values(record: InventoryRecord) -> dict[str, object]:
    return {
        "total": int(record.total),
        "reserved": int(record.reserved),
        "min_unit": int(record.min_unit),
        "max_unit": int(record.max_unit),
        "step_size": int(record.step_size),
        "allocation_ratio": float(record.allocation_ratio),
    }


# ---------------------------------------------------------------- repository


class InventoryRepository:
    """Inventory reads and writes on one connection (the caller's transaction).

    Write methods take the ``ProviderRow`` read in the same transaction; they
    compare-and-swap its generation, store the new value back on the row
    (``provider.generation``) and return it, so several writes can follow each
    other on one provider inside one transaction (as the reshaper does).
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # -- reads

    async def for_provider(self, provider_id: int) -> list[InventoryRow]:
        """The provider's inventories, ordered by resource class id."""
        rows = await self.conn.execute(
            select(
                _rc.c.name,
                _inv.c.resource_class_id,
                _inv.c.total,
                _inv.c.reserved,
                _inv.c.min_unit,
                _inv.c.max_unit,
                _inv.c.step_size,
                _inv.c.allocation_ratio,
                _inv.c.created_at,
                _inv.c.updated_at,
            )
            .select_from(_inv.join(_rc, _rc.c.id == _inv.c.resource_class_id))
            .where(_inv.c.resource_provider_id == provider_id)
            .order_by(_inv.c.resource_class_id)
        )
        return [
            InventoryRow(
                resource_class=name,
                resource_class_id=rc_id,
                record=InventoryRecord(
                    total, reserved, min_unit, max_unit, step_size, float(ratio)
                ),
                created_at=created_at,
                updated_at=updated_at,
            )
            for (name, rc_id, total, reserved, min_unit, max_unit, step_size, ratio,
                 created_at, updated_at) in rows
        ]

    async def find(self, provider_id: int, resource_class: str) -> InventoryRow | None:
        """One inventory by class name (unknown names simply find nothing)."""
        for row in await self.for_provider(provider_id):
            if row.resource_class == resource_class:
                return row
        return None

    async def _check_not_in_use(self, provider: ProviderRow, class_ids: list[int]) -> None:
        """:class:`InventoryInUse` naming the classes with allocations, by class id."""
        if not class_ids:
            return
        rows = await self.conn.execute(
            select(_rc.c.name)
            .select_from(_alloc.join(_rc, _rc.c.id == _alloc.c.resource_class_id))
            .where(
                _alloc.c.resource_provider_id == provider.id,
                _alloc.c.resource_class_id.in_(class_ids),
            )
            .group_by(_alloc.c.resource_class_id, _rc.c.name)
            .order_by(_alloc.c.resource_class_id)
        )
        in_use = [name for (name,) in rows]
        if in_use:
            raise InventoryInUse(classes=", ".join(in_use), uuid=provider.uuid)

    async def _bump(self, provider: ProviderRow, now: datetime | None) -> int:
        generation = await bump_generation(self.conn, provider.id, provider.generation, now=now)
        provider.generation = generation
        return generation

    # -- writes

    async def _named_classes_and_held(
        self, provider: ProviderRow, names: Mapping[str, object]
    ) -> tuple[dict[str, int], set[int]]:
        """Ids of the named classes, in the order named (the first unknown one:
        :class:`UnknownResourceClass`), and the class ids the provider has
        inventory of: one round trip."""
        wanted = list(dict.fromkeys(names))
        held = (
            select(literal_column("0").label("named"), _rc.c.name, _rc.c.id)
            .select_from(_inv.join(_rc, _rc.c.id == _inv.c.resource_class_id))
            .where(_inv.c.resource_provider_id == provider.id)
        )
        query = held if not wanted else union_all(
            held,
            select(literal_column("1").label("named"), _rc.c.name, _rc.c.id)
            .where(_rc.c.name.in_(wanted)),
        )
        found: dict[str, int] = {}
        existing: set[int] = set()
        for named, name, rc_id in await self.conn.execute(query):
            if named:
                found[name] = rc_id
            else:
                existing.add(rc_id)
        for name in wanted:
            if name not in found:
                raise UnknownResourceClass(name=name)
        return {name: found[name] for name in wanted}, existing

    async def replace_all(
        self,
        provider: ProviderRow,
        records: Mapping[str, InventoryRecord],
        *,
        now: datetime,
    ) -> int:
        """Make ``records`` (class name -> record) the provider's complete inventory.

        In order (the reference's order of errors):

        1. every class name must exist -> :class:`UnknownResourceClass` (400),
           the first unknown in ``records`` order;
        2. classes the provider has now but ``records`` lacks are deleted; if any
           of them has allocations -> :class:`InventoryInUse` (409,
           placement.inventory.inuse), classes listed by class id;
        3. new classes inserted, kept classes updated (shrinking below usage is
           allowed);
        4. generation +1 by compare-and-swap (always, even if nothing changed)
           -> :class:`~app.db.database.RowMoved` (the write is retried) if it moved.

        Returns the new generation (also stored on ``provider.generation``).
        An empty ``records`` deletes all inventory (subject to step 2).

        The capacity rule (reserved against total) is the inventories service's:
        the reshaper's interim and final inventories skip it.
        """
        ids, existing = await self._named_classes_and_held(provider, records)
        wanted = {ids[name]: record for name, record in records.items()}
        removed = sorted(existing - wanted.keys())
        await self._check_not_in_use(provider, removed)
        if removed:
            await self.conn.execute(
                delete(_inv).where(
                    _inv.c.resource_provider_id == provider.id,
                    _inv.c.resource_class_id.in_(removed),
                )
            )
        added = [
            {
                "resource_provider_id": provider.id,
                "resource_class_id": rc_id,
                "created_at": now,
                **_row_values(record),
            }
            for rc_id, record in wanted.items()
            if rc_id not in existing
        ]
        if added:
            await self.conn.execute(insert(_inv), added)
        for rc_id, record in wanted.items():
            if rc_id in existing:
                await self.conn.execute(
                    update(_inv)
                    .where(
                        _inv.c.resource_provider_id == provider.id,
                        _inv.c.resource_class_id == rc_id,
                    )
                    .values(updated_at=now, **_row_values(record))
                )
        return await self._bump(provider, now)

    async def add(
        self, provider: ProviderRow, resource_class: str, record: InventoryRecord, *, now: datetime
    ) -> int:
        """Add inventory of a class the provider does not have yet.

        Class known (:class:`UnknownResourceClass`) -> not present yet
        (:class:`InventoryExists`, concurrent_update) -> insert -> generation +1.
        Returns the new generation.
        """
        rc_id = (await require_class_ids(self.conn, [resource_class]))[resource_class]
        present = (
            await self.conn.execute(
                select(_inv.c.id).where(
                    _inv.c.resource_provider_id == provider.id,
                    _inv.c.resource_class_id == rc_id,
                )
            )
        ).first()
        if present is not None:
            raise InventoryExists(resource_class=resource_class, uuid=provider.uuid)
        await self.conn.execute(
            insert(_inv).values(
                resource_provider_id=provider.id,
                resource_class_id=rc_id,
                created_at=now,
                **_row_values(record),
            )
        )
        return await self._bump(provider, now)

    async def update_one(
        self, provider: ProviderRow, resource_class: str, record: InventoryRecord, *, now: datetime
    ) -> int:
        """Replace the fields of one existing inventory.

        Class known (:class:`UnknownResourceClass`) -> inventory present
        (:class:`InventoryNotFound`) -> update -> generation +1.
        """
        rc_id = (await require_class_ids(self.conn, [resource_class]))[resource_class]
        result = await self.conn.execute(
            update(_inv)
            .where(
                _inv.c.resource_provider_id == provider.id,
                _inv.c.resource_class_id == rc_id,
            )
            .values(updated_at=now, **_row_values(record))
        )
        if result.rowcount != 1:
            raise InventoryNotFound(resource_class)
        return await self._bump(provider, now)

    async def delete_one(
        self, provider: ProviderRow, resource_class: str, *, now: datetime
    ) -> int:
        """Delete one class of inventory.

        Class known (:class:`UnknownResourceClass`) -> not in use
        (:class:`InventoryInUse`) -> present (:class:`InventoryNotFound`) ->
        generation +1.
        """
        rc_id = (await require_class_ids(self.conn, [resource_class]))[resource_class]
        await self._check_not_in_use(provider, [rc_id])
        result = await self.conn.execute(
            delete(_inv).where(
                _inv.c.resource_provider_id == provider.id,
                _inv.c.resource_class_id == rc_id,
            )
        )
        if result.rowcount != 1:
            raise InventoryNotFound(resource_class)
        return await self._bump(provider, now)

    async def delete_all(self, provider: ProviderRow, *, now: datetime) -> int:
        """``replace_all`` with nothing: in-use check, delete, generation +1."""
        return await self.replace_all(provider, {}, now=now)
