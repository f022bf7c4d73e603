"""Setting up a provider on PostgreSQL in one autocommitted statement each.

Creating a provider and replacing its inventories, traits or aggregates (with
the generation the client saw) are, when nothing is wrong, a few rows guarded
by the provider generation. Each function here is that write as ONE statement
(data-modifying CTEs), run by ``Database.single_rows`` (on asyncpg through the
driver's own connection): no BEGIN, no COMMIT, one round trip instead of five
or six. The generation compare-and-swap
is an ``UPDATE ... WHERE generation = seen`` whose rows every other CTE reads,
so nothing is written unless it succeeded; PostgreSQL re-checks that condition
on the latest row version after waiting for its lock, so a writer that
committed after this statement's snapshot makes it write nothing.

Every writer of a provider's inventories, traits or (1.19+) aggregates moves
its generation, so a successful swap means the statement's snapshot of them is
current. Aggregates set below 1.19 keep the generation but rewrite the row
(``providers_core.lock_provider_row``): the aggregates statement also requires
the row version it read (``xmin``).

``None`` means "not written": the provider is missing, a generation, class,
trait or key differs, something is in use, or a concurrent writer got in the
way. The caller then runs its ordinary unit of work, which words the error in
the reference's order, or writes after all.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import text

from app.db.database import Database
from app.db.driver_statement import Refused, Rows
from app.records import InventoryRecord, ProviderRow

T = TypeVar("T")


def applies(db: Database, *values: str) -> bool:
    """Whether the one-statement form may run: PostgreSQL, and no NUL in a value
    (PostgreSQL rejects one even in a comparison; the ordinary path answers)."""
    return db.dialect == "postgresql" and not any("\x00" in value for value in values)


async def attempt(db: Database, work: Callable[[Rows], Awaitable[T | None]]) -> T | None:
    """``work`` as one autocommitted statement; ``None`` when it wrote nothing or
    lost a race on a key, a lock or a deadlock (the statement is undone whole)."""
    try:
        return await work(db.single_rows)
    except Refused as exc:
        if exc.lost_race:  # a uuid, name or aggregate taken meanwhile; a lock race
            return None
        raise


# ---------------------------------------------------------------- providers

_CREATE_ROOT = text("""
WITH new AS (SELECT nextval(pg_get_serial_sequence('resource_providers', 'id')) AS id)
INSERT INTO resource_providers
    (id, uuid, name, generation, root_provider_id, created_at, updated_at)
SELECT new.id, :uuid, :name, 0, new.id, :now, :now FROM new
ON CONFLICT DO NOTHING
RETURNING id
""")

_CREATE_CHILD = text("""
WITH parent AS (
    SELECT id, uuid, COALESCE(root_provider_id, id) AS root_id
    FROM resource_providers WHERE uuid = :parent
), created AS (
    INSERT INTO resource_providers
        (uuid, name, generation, parent_provider_id, root_provider_id, created_at)
    SELECT :uuid, :name, 0, parent.id, parent.root_id, :now FROM parent
    ON CONFLICT DO NOTHING
    RETURNING id, parent_provider_id, root_provider_id
)
SELECT created.id, created.parent_provider_id, created.root_provider_id, parent.uuid, root.uuid
FROM created, parent JOIN resource_providers root ON root.id = parent.root_id
""")


async def create_provider(
    rows: Rows, name: str, uuid: str, parent_uuid: str | None, now: datetime
) -> ProviderRow | None:
    """A new provider as the ordinary path writes it (a root is its own root and
    has ``updated_at`` set); ``None`` if the uuid or name is taken or the parent
    missing."""
    if parent_uuid is None:
        created = await rows(_CREATE_ROOT, {"uuid": uuid, "name": name, "now": now})
        if not created:
            return None
        new_id = created[0][0]
        return ProviderRow(new_id, uuid, name, 0, None, new_id, None, uuid, now, now)
    found = await rows(
        _CREATE_CHILD, {"uuid": uuid, "name": name, "parent": parent_uuid, "now": now})
    if not found:
        return None
    new_id, parent_id, root_id, parent_uuid_stored, root_uuid = found[0]
    return ProviderRow(
        new_id, uuid, name, 0, parent_id, root_id, parent_uuid_stored, root_uuid, now, None
    )


# -------------------------------------------------------------- inventories

_REPLACE_INVENTORIES = text("""
WITH provider AS (
    SELECT id FROM resource_providers WHERE uuid = :uuid AND generation = :generation
), wanted AS (
    SELECT rc.id AS class_id, w.total, w.reserved, w.min_unit, w.max_unit, w.step_size, w.ratio
    FROM unnest(CAST(:names AS VARCHAR[]), CAST(:totals AS INTEGER[]),
                CAST(:reserved AS INTEGER[]), CAST(:min_units AS INTEGER[]),
                CAST(:max_units AS INTEGER[]), CAST(:step_sizes AS INTEGER[]),
                CAST(:ratios AS FLOAT[]))
         AS w(name, total, reserved, min_unit, max_unit, step_size, ratio)
    JOIN resource_classes rc ON rc.name = w.name
), held AS (
    SELECT i.resource_class_id AS class_id
    FROM inventories i JOIN provider p ON i.resource_provider_id = p.id
), bumped AS (
    UPDATE resource_providers rp SET generation = rp.generation + 1, updated_at = :now
    FROM provider p
    WHERE rp.id = p.id AND rp.generation = :generation
      AND (SELECT count(*) FROM wanted) = :count
      AND NOT EXISTS (
          SELECT 1 FROM allocations a
          WHERE a.resource_provider_id = p.id AND a.resource_class_id IN (
              SELECT class_id FROM held EXCEPT SELECT class_id FROM wanted))
    RETURNING rp.id, rp.generation
), removed AS (
    DELETE FROM inventories i USING bumped b
    WHERE i.resource_provider_id = b.id
      AND i.resource_class_id NOT IN (SELECT class_id FROM wanted)
), added AS (
    INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved,
                             min_unit, max_unit, step_size, allocation_ratio, created_at)
    SELECT b.id, w.class_id, w.total, w.reserved, w.min_unit, w.max_unit, w.step_size,
           w.ratio, :now
    FROM bumped b CROSS JOIN wanted w
    WHERE w.class_id NOT IN (SELECT class_id FROM held)
), changed AS (
    UPDATE inventories i
    SET total = w.total, reserved = w.reserved, min_unit = w.min_unit, max_unit = w.max_unit,
        step_size = w.step_size, allocation_ratio = w.ratio, updated_at = :now
    FROM bumped b, wanted w
    WHERE i.resource_provider_id = b.id AND i.resource_class_id = w.class_id
)
SELECT generation FROM bumped
""")


async def replace_inventories(
    rows: Rows,
    uuid: str,
    seen_generation: int,
    records: Mapping[str, InventoryRecord],
    now: datetime,
) -> int | None:
    """``InventoryRepository.replace_all`` behind the client's generation: the
    new generation, or ``None`` (missing provider, other generation, unknown
    class, a removed class in use, a race)."""
    values = list(records.values())
    params: dict[str, Any] = {
        "uuid": uuid,
        "generation": seen_generation,
        "count": len(records),
        "now": now,
        "names": list(records),
        "totals": [int(r.total) for r in values],
        "reserved": [int(r.reserved) for r in values],
        "min_units": [int(r.min_unit) for r in values],
        "max_units": [int(r.max_unit) for r in values],
        "step_sizes": [int(r.step_size) for r in values],
        "ratios": [float(r.allocation_ratio) for r in values],
    }
    return _generation(await rows(_REPLACE_INVENTORIES, params))


# ------------------------------------------------------------------- traits

_REPLACE_TRAITS = text("""
WITH provider AS (
    SELECT id FROM resource_providers WHERE uuid = :uuid AND generation = :generation
), found AS (
    SELECT id, name, created_at, updated_at FROM traits
    WHERE name = ANY(CAST(:names AS VARCHAR[]))
), held AS (
    SELECT t.trait_id FROM resource_provider_traits t JOIN provider p
    ON t.resource_provider_id = p.id
), bumped AS (
    UPDATE resource_providers rp SET generation = rp.generation + 1, updated_at = :now
    FROM provider p
    WHERE rp.id = p.id AND rp.generation = :generation
      AND (SELECT count(*) FROM found) = :count
      AND EXISTS (
          (SELECT trait_id FROM held EXCEPT SELECT id FROM found)
          UNION ALL (SELECT id FROM found EXCEPT SELECT trait_id FROM held))
    RETURNING rp.id, rp.generation
), removed AS (
    DELETE FROM resource_provider_traits t USING bumped b
    WHERE t.resource_provider_id = b.id AND t.trait_id NOT IN (SELECT id FROM found)
), added AS (
    INSERT INTO resource_provider_traits (trait_id, resource_provider_id, created_at)
    SELECT f.id, b.id, :now FROM bumped b CROSS JOIN found f
    WHERE f.id NOT IN (SELECT trait_id FROM held)
)
SELECT b.generation, f.name, f.created_at, f.updated_at FROM bumped b CROSS JOIN found f
""")

TraitStamp = tuple[str, datetime | None, datetime | None]


async def replace_traits(
    rows: Rows, uuid: str, seen_generation: int, names: Sequence[str], now: datetime
) -> tuple[int, list[TraitStamp]] | None:
    """A changed, non-empty trait set behind the client's generation: the new
    generation and the traits' (name, created_at, updated_at); ``None``
    otherwise (an unchanged set included: the ordinary path answers it)."""
    wanted = sorted(set(names))
    found = await rows(
        _REPLACE_TRAITS,
        {"uuid": uuid, "generation": seen_generation, "count": len(wanted),
         "names": wanted, "now": now},
    )
    if not found:
        return None
    return found[0][0], [(name, created, updated) for _, name, created, updated in found]


# --------------------------------------------------------------- aggregates

_REPLACE_AGGREGATES = text("""
WITH provider AS (
    SELECT id, xmin AS seen FROM resource_providers
    WHERE uuid = :uuid AND generation = :generation
), given AS (
    SELECT DISTINCT u AS uuid FROM unnest(CAST(:uuids AS VARCHAR[])) AS u
), known AS (
    SELECT a.id, a.uuid FROM placement_aggregates a
    WHERE a.uuid = ANY(CAST(:uuids AS VARCHAR[]))
), created AS (
    INSERT INTO placement_aggregates (uuid, created_at)
    SELECT g.uuid, :now FROM given g
    WHERE EXISTS (SELECT 1 FROM provider) AND g.uuid NOT IN (SELECT uuid FROM known)
    ON CONFLICT DO NOTHING
    RETURNING id
), wanted AS (
    SELECT id FROM known UNION ALL SELECT id FROM created
), held AS (
    SELECT r.aggregate_id FROM resource_provider_aggregates r JOIN provider p
    ON r.resource_provider_id = p.id
), bumped AS (
    UPDATE resource_providers rp SET generation = rp.generation + 1, updated_at = :now
    FROM provider p
    WHERE rp.id = p.id AND rp.generation = :generation AND rp.xmin = p.seen
      AND (SELECT count(*) FROM wanted) = :count
    RETURNING rp.id, rp.generation
), removed AS (
    DELETE FROM resource_provider_aggregates r USING bumped b
    WHERE r.resource_provider_id = b.id AND r.aggregate_id NOT IN (SELECT id FROM wanted)
), added AS (
    INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at)
    SELECT b.id, w.id, :now FROM bumped b CROSS JOIN wanted w
    WHERE w.id NOT IN (SELECT aggregate_id FROM held)
)
SELECT generation FROM bumped
""")


async def replace_aggregates(
    rows: Rows, uuid: str, seen_generation: int, uuids: Sequence[str], now: datetime
) -> int | None:
    """``AggregateRepository.set_for_provider`` behind the client's generation
    (aggregates never seen are created): the new generation, or ``None``."""
    wanted = sorted(set(uuids))
    return _generation(await rows(
        _REPLACE_AGGREGATES,
        {"uuid": uuid, "generation": seen_generation, "count": len(wanted),
         "uuids": wanted, "now": now},
    ))


def _generation(found: Sequence[Sequence[Any]]) -> int | None:
    """The new generation a replacing statement answers (no row: not written)."""
    return int(found[0][0]) if found else None
