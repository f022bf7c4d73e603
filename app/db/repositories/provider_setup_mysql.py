"""Setting up a provider on MySQL/MariaDB in three or four round trips.

The MySQL counterpart of ``provider_setup_postgresql``: MySQL has no
data-modifying CTEs, so each write is a short READ COMMITTED transaction
instead, shaped for the common case and nothing else. The provider
generation compare-and-swap (``UPDATE ... WHERE generation = seen``) comes
first and locks the provider's row, so every later statement reads what the
writers before it committed; then one ``INSERT ... SELECT`` that joins the
names to their ids and writes only into an empty set (a provider's first
inventory, traits or aggregates, as a new provider gets them); then COMMIT.
The ordinary unit of work reads the provider, the names and the held rows in
separate statements before writing: two or three round trips more.

``None`` means "not written" (the transaction is rolled back): the provider is
missing or at another generation, a name is unknown (names compare exactly,
whatever the column's collation), the set was not empty, an aggregate is new,
or a key raced. The caller then runs its ordinary unit of work, which words
the error in the reference's order, or writes after all.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.dialect import collation_key
from app.records import InventoryRecord, ProviderRow

T = TypeVar("T")
TraitStamp = tuple[str, datetime | None, datetime | None]


class _NotWritten(Exception):
    """Ends a unit of work that found the common case does not hold: rolled back."""


def applies(db: Database, *values: str) -> bool:
    """Whether these statements may run: MySQL/MariaDB, and no NUL in a value
    (never stored; the ordinary path answers)."""
    return db.dialect == "mysql" and not any("\x00" in value for value in values)


async def attempt(db: Database, work: Callable[[AsyncConnection], Awaitable[T | None]]) -> T | None:
    """``work`` in one READ COMMITTED transaction (deadlocks retried whole), or
    ``None`` when it wrote nothing or met a key (then nothing is kept)."""

    async def unit(conn: AsyncConnection) -> T:
        try:
            result = await work(conn)
        except IntegrityError:
            # A duplicate or a missing parent: the ordinary path words it (not
            # retried here, unlike a keyed write).
            raise _NotWritten() from None
        if result is None:
            raise _NotWritten()
        return result

    try:
        return await db.write(unit, keyed=True)
    except _NotWritten:
        return None


def _seconds(now: datetime) -> datetime:
    # DATETIME keeps whole seconds: store what the answer shows.
    return now.replace(microsecond=0)


# ---------------------------------------------------------------- providers

_INSERT_PROVIDER = text("""
INSERT INTO resource_providers
    (uuid, name, generation, parent_provider_id, root_provider_id, created_at)
VALUES (:uuid, :name, 0, :parent_id, :root_id, :now)
""")

_SET_OWN_ROOT = text("""
UPDATE resource_providers SET root_provider_id = id, updated_at = :now WHERE id = :id
""")

_PARENT = text("""
SELECT p.id, COALESCE(p.root_provider_id, p.id), p.uuid, root.uuid
FROM resource_providers p
JOIN resource_providers root ON root.id = COALESCE(p.root_provider_id, p.id)
WHERE p.uuid = :uuid
""")


async def create_provider(
    conn: AsyncConnection, name: str, uuid: str, parent_uuid: str | None, now: datetime
) -> ProviderRow | None:
    """A new provider as the ordinary path writes it (a root is its own root and
    has ``updated_at`` set); ``None`` if the parent is missing (a taken uuid or
    name fails the insert on its key)."""
    now = _seconds(now)
    if parent_uuid is None:
        result = await conn.execute(
            _INSERT_PROVIDER,
            {"uuid": uuid, "name": name, "parent_id": None, "root_id": None, "now": now})
        new_id = int(result.lastrowid)
        await conn.execute(_SET_OWN_ROOT, {"id": new_id, "now": now})
        return ProviderRow(new_id, uuid, name, 0, None, new_id, None, uuid, now, now)
    parent = (await conn.execute(_PARENT, {"uuid": parent_uuid})).first()
    if parent is None:
        return None
    parent_id, root_id, parent_uuid_stored, root_uuid = parent
    result = await conn.execute(
        _INSERT_PROVIDER,
        {"uuid": uuid, "name": name, "parent_id": parent_id, "root_id": root_id, "now": now})
    return ProviderRow(
        int(result.lastrowid), uuid, name, 0, parent_id, root_id, parent_uuid_stored,
        root_uuid, now, None,
    )


# ------------------------------------------------------ the generation swap

_BUMP = text("""
UPDATE resource_providers SET generation = generation + 1, updated_at = :now
WHERE uuid = :uuid AND generation = :generation
""")


async def _bump(conn: AsyncConnection, uuid: str, seen_generation: int, now: datetime) -> bool:
    """The compare-and-swap; it locks the row until COMMIT."""
    result = await conn.execute(_BUMP, {"uuid": uuid, "generation": seen_generation, "now": now})
    return result.rowcount == 1


def _names(prefix: str, count: int) -> str:
    return ", ".join(f":{prefix}{i}" for i in range(count))


# -------------------------------------------------------------- inventories

_FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")


@lru_cache(maxsize=32)
def _add_inventories(count: int) -> TextClause:
    """Inventories of ``count`` classes for a provider that has none yet."""
    rows = " UNION ALL ".join(
        f"SELECT :name{i} AS name, " + ", ".join(f":{f}{i} AS {f}" for f in _FIELDS)
        for i in range(count)
    )
    return text(f"""
INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved,
                         min_unit, max_unit, step_size, allocation_ratio, created_at)
SELECT rp.id, rc.id, w.total, w.reserved, w.min_unit, w.max_unit, w.step_size,
       w.allocation_ratio, :now
FROM resource_providers rp
JOIN ({rows}) w
JOIN resource_classes rc ON rc.name = w.name AND BINARY rc.name = w.name
WHERE rp.uuid = :uuid
  AND NOT EXISTS (SELECT 1 FROM inventories i WHERE i.resource_provider_id = rp.id)
""")


async def replace_inventories(
    conn: AsyncConnection,
    uuid: str,
    seen_generation: int,
    records: Mapping[str, InventoryRecord],
    now: datetime,
) -> int | None:
    """A provider's first inventories behind the client's generation: the new
    generation, or ``None`` (also when it has inventories: the ordinary path
    replaces them)."""
    if not records or not await _bump(conn, uuid, seen_generation, now):
        return None
    params: dict[str, Any] = {"uuid": uuid, "now": _seconds(now)}
    for i, (name, record) in enumerate(records.items()):
        params[f"name{i}"] = name
        params[f"total{i}"] = int(record.total)
        params[f"reserved{i}"] = int(record.reserved)
        params[f"min_unit{i}"] = int(record.min_unit)
        params[f"max_unit{i}"] = int(record.max_unit)
        params[f"step_size{i}"] = int(record.step_size)
        params[f"allocation_ratio{i}"] = float(record.allocation_ratio)
    added = await conn.execute(_add_inventories(len(records)), params)
    return seen_generation + 1 if added.rowcount == len(records) else None


# ------------------------------------------------------------------- traits

_ADD_TRAITS = text("""
INSERT INTO resource_provider_traits (trait_id, resource_provider_id, created_at)
SELECT t.id, rp.id, :now
FROM resource_providers rp JOIN traits t
WHERE rp.uuid = :uuid AND t.name IN :names AND BINARY t.name IN :names
  AND NOT EXISTS (SELECT 1 FROM resource_provider_traits x WHERE x.resource_provider_id = rp.id)
""").bindparams(bindparam("names", expanding=True))

_TRAIT_STAMPS = text("""
SELECT name, created_at, updated_at FROM traits WHERE name IN :names AND BINARY name IN :names
""").bindparams(bindparam("names", expanding=True))


async def replace_traits(
    conn: AsyncConnection, uuid: str, seen_generation: int, names: Sequence[str], now: datetime
) -> tuple[int, list[TraitStamp]] | None:
    """A provider's first traits (a non-empty set) behind the client's
    generation: the new generation and the traits' (name, created_at,
    updated_at); ``None`` otherwise."""
    wanted = sorted(set(names))
    if not wanted or not await _bump(conn, uuid, seen_generation, now):
        return None
    params = {"uuid": uuid, "names": wanted, "now": _seconds(now)}
    if (await conn.execute(_ADD_TRAITS, params)).rowcount != len(wanted):
        return None
    stamps = await conn.execute(_TRAIT_STAMPS, {"names": wanted})
    return seen_generation + 1, [(name, created, updated) for name, created, updated in stamps]


# --------------------------------------------------------------- aggregates

_ADD_AGGREGATES = text("""
INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at)
SELECT rp.id, a.id, :now
FROM resource_providers rp JOIN placement_aggregates a
WHERE rp.uuid = :uuid AND a.uuid IN :uuids
  AND NOT EXISTS (
      SELECT 1 FROM resource_provider_aggregates x WHERE x.resource_provider_id = rp.id)
""").bindparams(bindparam("uuids", expanding=True))


async def replace_aggregates(
    conn: AsyncConnection, uuid: str, seen_generation: int, uuids: Sequence[str], now: datetime
) -> int | None:
    """A provider's first aggregates (a non-empty set of aggregates that exist)
    behind the client's generation: the new generation, or ``None``."""
    # Distinct as the column's collation tells them apart (the ordinary path's key).
    key = collation_key(conn)
    wanted = {key(uuid_): uuid_ for uuid_ in uuids}
    if not wanted or not await _bump(conn, uuid, seen_generation, now):
        return None
    params = {"uuid": uuid, "uuids": sorted(wanted.values()), "now": _seconds(now)}
    if (await conn.execute(_ADD_AGGREGATES, params)).rowcount != len(wanted):
        return None
    return seen_generation + 1
