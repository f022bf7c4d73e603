"""Setting up a provider on MySQL/MariaDB in two round trips.

The MySQL counterpart of ``provider_setup_postgresql``: MySQL has no
data-modifying CTEs, so each write is a short READ COMMITTED transaction
instead, shaped for the common case and nothing else, its statements sent
together (``mysql_batch``, one round trip) and then COMMIT. The provider
generation compare-and-swap (``UPDATE ... WHERE generation = seen``) comes
first and locks the provider's row, so every later statement reads what the
writers before it committed; then one ``INSERT ... SELECT`` that joins the
names to their ids and writes only into an empty set (a provider's first
inventory, traits or aggregates, as a new provider gets them). The ordinary
unit of work reads the provider, the names and the held rows in separate
statements before writing: three or four round trips more.

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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import mysql_batch
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

_CREATE_ROOT = mysql_batch.compose(
    """INSERT INTO resource_providers (uuid, name, generation, created_at)
       VALUES (:uuid, :name, 0, :now)""",
    # The root is its own root; the insert's id is the session's LAST_INSERT_ID().
    """UPDATE resource_providers SET root_provider_id = id, updated_at = :now
       WHERE id = LAST_INSERT_ID()""",
)

_CREATE_CHILD = mysql_batch.compose(
    """INSERT INTO resource_providers
           (uuid, name, generation, parent_provider_id, root_provider_id, created_at)
       SELECT :uuid, :name, 0, p.id, COALESCE(p.root_provider_id, p.id), :now
       FROM resource_providers p WHERE p.uuid = :parent""",
    # The parent row is share-locked by the insert's foreign key check: still there.
    """SELECT p.id, COALESCE(p.root_provider_id, p.id), p.uuid, root.uuid
       FROM resource_providers p
       JOIN resource_providers root ON root.id = COALESCE(p.root_provider_id, p.id)
       WHERE p.uuid = :parent""",
)


async def create_provider(
    conn: AsyncConnection, name: str, uuid: str, parent_uuid: str | None, now: datetime
) -> ProviderRow | None:
    """A new provider as the ordinary path writes it (a root is its own root and
    has ``updated_at`` set), in one round trip; ``None`` if the parent is
    missing (a taken uuid or name fails the insert on its key)."""
    now = _seconds(now)
    if parent_uuid is None:
        inserted, rooted = await mysql_batch.run(
            conn, _CREATE_ROOT, {"uuid": uuid, "name": name, "now": now})
        if inserted.rowcount != 1 or rooted.rowcount != 1:
            return None
        new_id = inserted.lastrowid
        return ProviderRow(new_id, uuid, name, 0, None, new_id, None, uuid, now, now)
    inserted, parent = await mysql_batch.run(
        conn, _CREATE_CHILD, {"uuid": uuid, "name": name, "parent": parent_uuid, "now": now})
    if inserted.rowcount != 1 or len(parent.rows) != 1:
        return None
    parent_id, root_id, parent_uuid_stored, root_uuid = parent.rows[0]
    return ProviderRow(
        inserted.lastrowid, uuid, name, 0, parent_id, root_id, parent_uuid_stored,
        root_uuid, now, None,
    )


# ------------------------------------------------------ the generation swap

# The compare-and-swap, first in each batch below: it locks the row until
# COMMIT. The statements after it run even when it matched nothing; the
# unit of work is then rolled back.
_BUMP = """
UPDATE resource_providers SET generation = generation + 1, updated_at = :now
WHERE uuid = :uuid AND generation = :generation
"""


def _written(outcomes: list[mysql_batch.Outcome], count: int) -> bool:
    """The swap matched and the insert wrote ``count`` rows."""
    return outcomes[0].rowcount == 1 and outcomes[1].rowcount == count


# -------------------------------------------------------------- inventories

_FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")


@lru_cache(maxsize=32)
def _add_inventories(count: int) -> mysql_batch.Batch:
    """The swap, then inventories of ``count`` classes for a provider that has none yet."""
    rows = " UNION ALL ".join(
        f"SELECT :name{i} AS name, " + ", ".join(f":{f}{i} AS {f}" for f in _FIELDS)
        for i in range(count)
    )
    return mysql_batch.compose(_BUMP, f"""
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
    """A provider's first inventories behind the client's generation, in one
    round trip: the new generation, or ``None`` (also when it has inventories:
    the ordinary path replaces them)."""
    if not records:
        return None
    params: dict[str, Any] = {"uuid": uuid, "generation": seen_generation, "now": _seconds(now)}
    for i, (name, record) in enumerate(records.items()):
        params[f"name{i}"] = name
        params[f"total{i}"] = int(record.total)
        params[f"reserved{i}"] = int(record.reserved)
        params[f"min_unit{i}"] = int(record.min_unit)
        params[f"max_unit{i}"] = int(record.max_unit)
        params[f"step_size{i}"] = int(record.step_size)
        params[f"allocation_ratio{i}"] = float(record.allocation_ratio)
    outcomes = await mysql_batch.run(conn, _add_inventories(len(records)), params)
    return seen_generation + 1 if _written(outcomes, len(records)) else None


# ------------------------------------------------------------------- traits

_ADD_TRAITS = mysql_batch.compose(
    _BUMP,
    """INSERT INTO resource_provider_traits (trait_id, resource_provider_id, created_at)
       SELECT t.id, rp.id, :now
       FROM resource_providers rp JOIN traits t
       WHERE rp.uuid = :uuid AND t.name IN :names AND BINARY t.name IN :names
         AND NOT EXISTS (SELECT 1 FROM resource_provider_traits x
                         WHERE x.resource_provider_id = rp.id)""",
    """SELECT name, created_at, updated_at FROM traits
       WHERE name IN :names AND BINARY name IN :names""",
    expanding=("names",),
)


async def replace_traits(
    conn: AsyncConnection, uuid: str, seen_generation: int, names: Sequence[str], now: datetime
) -> tuple[int, list[TraitStamp]] | None:
    """A provider's first traits (a non-empty set) behind the client's
    generation, in one round trip: the new generation and the traits' (name,
    created_at, updated_at); ``None`` otherwise."""
    wanted = sorted(set(names))
    if not wanted:
        return None
    params = {"uuid": uuid, "generation": seen_generation, "names": wanted,
              "now": _seconds(now)}
    outcomes = await mysql_batch.run(conn, _ADD_TRAITS, params)
    if not _written(outcomes, len(wanted)):
        return None
    return seen_generation + 1, [(name, created, updated)
                                 for name, created, updated in outcomes[2].rows]


# --------------------------------------------------------------- aggregates

_ADD_AGGREGATES = mysql_batch.compose(
    _BUMP,
    """INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at)
       SELECT rp.id, a.id, :now
       FROM resource_providers rp JOIN placement_aggregates a
       WHERE rp.uuid = :uuid AND a.uuid IN :uuids
         AND NOT EXISTS (SELECT 1 FROM resource_provider_aggregates x
                         WHERE x.resource_provider_id = rp.id)""",
    expanding=("uuids",),
)


async def replace_aggregates(
    conn: AsyncConnection, uuid: str, seen_generation: int, uuids: Sequence[str], now: datetime
) -> int | None:
    """A provider's first aggregates (a non-empty set of aggregates that exist)
    behind the client's generation, in one round trip: the new generation, or
    ``None``."""
    # Distinct as the column's collation tells them apart (the ordinary path's key).
    key = collation_key(conn)
    wanted = {key(uuid_): uuid_ for uuid_ in uuids}
    if not wanted:
        return None
    params = {"uuid": uuid, "generation": seen_generation, "uuids": sorted(wanted.values()),
              "now": _seconds(now)}
    outcomes = await mysql_batch.run(conn, _ADD_AGGREGATES, params)
    return seen_generation + 1 if _written(outcomes, len(wanted)) else None
