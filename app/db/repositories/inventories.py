"""Inventories of resource providers, and per-provider usages.

All inventory writes go through :class:`InventoryRepository`, which works on a
connection the caller opened (normally inside ``run_write``), so other units
of work — the reshaper in particular — can change inventory inside their own
transaction. Every write bumps the provider generation with compare-and-swap
(``providers_core.bump_generation``).

Failures are raised as the exceptions below. They are ``PlacementError``
subclasses with the reference's bare message and the right status/code, so
they render correctly when left alone; handlers that need the reference's
prefixes ("update conflict: ...", "Unable to create inventory ...") catch them
and re-raise with ``exc.message`` embedded.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.providers_core import ProviderRow, bump_generation
from app.exceptions import CONCURRENT_UPDATE, INVENTORY_INUSE, Conflict, InvalidInput, NotFound
from app.microversion import MAX_VERSION, Version

MAX_INT = 0x7FFFFFFF
# From 1.26 on a capacity of exactly 0 (reserved == total) is accepted.
RESERVED_CAN_BE_TOTAL_VERSION: Version = (1, 26)

PROVIDER_RACE = (
    "Another thread concurrently updated the resource provider data. Please retry your update"
)

_inv = models.inventories
_alloc = models.allocations
_rc = models.resource_classes


# --------------------------------------------------------------------- errors


class UnknownResourceClass(InvalidInput):
    """A resource class name the server does not know."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such resource class {name}.")
        self.name = name


class InvalidCapacity(InvalidInput):
    """An inventory fails the capacity rule (see :func:`check_capacity`)."""


class InventoryInUse(Conflict):
    """Inventory that would be removed still has allocations."""

    def __init__(self, classes: list[str], provider_uuid: str) -> None:
        super().__init__(
            f"Inventory for '{', '.join(classes)}' on resource provider "
            f"'{provider_uuid}' in use.",
            code=INVENTORY_INUSE,
        )
        self.classes = classes


class InventoryExists(Conflict):
    """``add`` of a class the provider already has inventory for."""

    def __init__(self, name: str, provider_uuid: str) -> None:
        super().__init__(
            f"Inventory for '{name}' already exists on resource provider '{provider_uuid}'.",
            code=CONCURRENT_UPDATE,
        )


class InventoryNotFound(NotFound):
    """The provider has no inventory of a (known) class."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"No inventory of class {name} found.")
        self.name = name


class ProviderRace(Conflict):
    """The provider generation moved under us (compare-and-swap failed)."""

    def __init__(self) -> None:
        super().__init__(PROVIDER_RACE, code=CONCURRENT_UPDATE)


# ------------------------------------------------------------------- records


@dataclass(frozen=True)
class InventoryRecord:
    """The six inventory fields, defaults applied (what gets stored)."""

    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        """``int((total - reserved) * allocation_ratio)``, truncated toward zero."""
        return capacity(self.total, self.reserved, self.allocation_ratio)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


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


def capacity(total: float, reserved: float, allocation_ratio: float) -> int:
    return int((total - reserved) * allocation_ratio)


def check_capacity(
    records: Mapping[str, InventoryRecord], provider_uuid: str, version: Version
) -> None:
    """The capacity rule of every inventory write except the reshaper.

    Below 1.26 capacity must be > 0, from 1.26 on >= 0; the first record (in
    mapping order) that fails raises :class:`InvalidCapacity`.
    """
    reserved_can_be_total = version >= RESERVED_CAN_BE_TOTAL_VERSION
    for name, record in records.items():
        cap = record.capacity
        if reserved_can_be_total and cap < 0:
            raise InvalidCapacity(
                f"Invalid inventory for '{name}' on resource provider '{provider_uuid}'. "
                "The reserved value is greater than total."
            )
        if not reserved_can_be_total and cap <= 0:
            raise InvalidCapacity(
                f"Invalid inventory for '{name}' on resource provider '{provider_uuid}'. "
                "The reserved value is greater than or equal to total."
            )


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

    async def usages(self, provider_id: int) -> dict[str, int]:
        """Sum of allocations per class the provider has inventory of (0 if none)."""
        used = (
            select(
                _alloc.c.resource_class_id,
                func.sum(_alloc.c.used).label("used"),
            )
            .where(_alloc.c.resource_provider_id == provider_id)
            .group_by(_alloc.c.resource_class_id)
            .subquery()
        )
        rows = await self.conn.execute(
            select(_rc.c.name, func.coalesce(used.c.used, 0))
            .select_from(
                _inv.join(_rc, _rc.c.id == _inv.c.resource_class_id).outerjoin(
                    used, used.c.resource_class_id == _inv.c.resource_class_id
                )
            )
            .where(_inv.c.resource_provider_id == provider_id)
            .order_by(_inv.c.resource_class_id)
        )
        return {name: int(total) for name, total in rows}

    async def class_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Ids of the named classes; :class:`UnknownResourceClass` for the first unknown."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        rows = await self.conn.execute(select(_rc.c.name, _rc.c.id).where(_rc.c.name.in_(wanted)))
        ids: dict[str, int] = {name: id_ for name, id_ in rows}
        for name in wanted:
            if name not in ids:
                raise UnknownResourceClass(name)
        return ids

    async def _check_not_in_use(
        self, provider: ProviderRow, class_ids: Iterable[int]
    ) -> None:
        ids = list(class_ids)
        if not ids:
            return
        rows = await self.conn.execute(
            select(_rc.c.name)
            .select_from(_alloc.join(_rc, _rc.c.id == _alloc.c.resource_class_id))
            .where(
                _alloc.c.resource_provider_id == provider.id,
                _alloc.c.resource_class_id.in_(ids),
            )
            .group_by(_alloc.c.resource_class_id, _rc.c.name)
            .order_by(_alloc.c.resource_class_id)
        )
        in_use = [name for (name,) in rows]
        if in_use:
            raise InventoryInUse(in_use, provider.uuid)

    async def _bump(self, provider: ProviderRow, now: datetime | None) -> int:
        try:
            generation = await bump_generation(
                self.conn, provider.id, provider.generation, now=now
            )
        except Conflict:
            raise ProviderRace() from None
        provider.generation = generation
        return generation

    # -- writes

    async def replace_all(
        self,
        provider: ProviderRow,
        records: Mapping[str, InventoryRecord],
        *,
        check_capacity_rule: bool = True,
        version: Version = MAX_VERSION,
        now: datetime,
        expected_generation: int | None = None,
    ) -> int:
        """Make ``records`` (class name -> record) the provider's complete inventory.

        In order (the reference's order of errors):

        1. ``expected_generation`` given and != ``provider.generation``
           -> ``Conflict`` "resource provider generation conflict"
           (placement.concurrent_update);
        2. ``check_capacity_rule`` -> :func:`check_capacity` at ``version``
           (the reshaper passes False) -> :class:`InvalidCapacity` (400);
        3. every class name must exist -> :class:`UnknownResourceClass` (400);
        4. classes the provider has now but ``records`` lacks are deleted; if any
           of them has allocations -> :class:`InventoryInUse` (409,
           placement.inventory.inuse), classes listed by class id;
        5. new classes inserted, kept classes updated (shrinking below usage is
           allowed);
        6. generation +1 by compare-and-swap (always, even if nothing changed)
           -> :class:`ProviderRace` (409, placement.concurrent_update) if it moved.

        Returns the new generation (also stored on ``provider.generation``).
        An empty ``records`` deletes all inventory (subject to step 4).
        """
        if expected_generation is not None and expected_generation != provider.generation:
            raise Conflict("resource provider generation conflict", code=CONCURRENT_UPDATE)
        if check_capacity_rule:
            check_capacity(records, provider.uuid, version)
        ids = await self.class_ids(records)
        existing = {
            rc_id
            for (rc_id,) in await self.conn.execute(
                select(_inv.c.resource_class_id).where(
                    _inv.c.resource_provider_id == provider.id
                )
            )
        }
        wanted = {ids[name]: record for name, record in records.items()}
        removed = existing - wanted.keys()
        await self._check_not_in_use(provider, sorted(removed))
        if removed:
            await self.conn.execute(
                delete(_inv).where(
                    _inv.c.resource_provider_id == provider.id,
                    _inv.c.resource_class_id.in_(sorted(removed)),
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
        self,
        provider: ProviderRow,
        resource_class: str,
        record: InventoryRecord,
        *,
        version: Version = MAX_VERSION,
        now: datetime,
    ) -> int:
        """Add inventory of a class the provider does not have yet.

        Capacity rule -> class known (:class:`UnknownResourceClass`) -> not
        present yet (:class:`InventoryExists`, concurrent_update) -> insert ->
        generation +1. Returns the new generation.
        """
        check_capacity({resource_class: record}, provider.uuid, version)
        rc_id = (await self.class_ids([resource_class]))[resource_class]
        present = (
            await self.conn.execute(
                select(_inv.c.id).where(
                    _inv.c.resource_provider_id == provider.id,
                    _inv.c.resource_class_id == rc_id,
                )
            )
        ).first()
        if present is not None:
            raise InventoryExists(resource_class, provider.uuid)
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
        self,
        provider: ProviderRow,
        resource_class: str,
        record: InventoryRecord,
        *,
        version: Version = MAX_VERSION,
        now: datetime,
        expected_generation: int | None = None,
    ) -> int:
        """Replace the fields of one existing inventory.

        Generation check (as in :meth:`replace_all`) -> capacity rule -> class
        known (:class:`UnknownResourceClass`) -> inventory present
        (:class:`InventoryNotFound`) -> update -> generation +1.
        """
        if expected_generation is not None and expected_generation != provider.generation:
            raise Conflict("resource provider generation conflict", code=CONCURRENT_UPDATE)
        check_capacity({resource_class: record}, provider.uuid, version)
        rc_id = (await self.class_ids([resource_class]))[resource_class]
        result = await self.conn.execute(
            update(_inv)
            .where(
                _inv.c.resource_provider_id == provider.id,
                _inv.c.resource_class_id == rc_id,
            )
            .values(updated_at=now, **_row_values(record))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
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
        rc_id = (await self.class_ids([resource_class]))[resource_class]
        await self._check_not_in_use(provider, [rc_id])
        result = await self.conn.execute(
            delete(_inv).where(
                _inv.c.resource_provider_id == provider.id,
                _inv.c.resource_class_id == rc_id,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise InventoryNotFound(
                resource_class, f"No inventory of class {resource_class} found for delete"
            )
        return await self._bump(provider, now)

    async def delete_all(self, provider: ProviderRow, *, now: datetime) -> int:
        """``replace_all`` with nothing: in-use check, delete, generation +1."""
        return await self.replace_all(provider, {}, check_capacity_rule=False, now=now)
