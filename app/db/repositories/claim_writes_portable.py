"""A claim's writes on SQLite and MySQL/MariaDB: a few statements, executed as batches.

The providers' generations are compared and swapped first, in id order: a
claim that lost a race on one stops before writing anything else, and claims
on the same providers queue on those rows in one order (no deadlock among
them; on Galera the same rows are what certification sees conflicting
between nodes). On SQLite the write lock is held since ``BEGIN IMMEDIATE``,
so nobody else can create a consumer meanwhile; on MySQL a consumer created
concurrently is a duplicate key, which retries the unit of work (which then
sees the consumer). The generation guards report what changed, for the
compare-and-swap checks of the caller.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.database import ProviderGenerationRace

_alloc = models.allocations
_rp = models.resource_providers
_consumers = models.consumers

_DELETE_ALLOCATIONS = delete(_alloc).where(
    _alloc.c.consumer_id.in_(bindparam("consumers", expanding=True)))
_UPDATE_CONSUMER = (
    update(_consumers)
    .where(_consumers.c.id == bindparam("b_id"),
           _consumers.c.generation == bindparam("b_gen"))
    .values(generation=bindparam("b_gen", type_=Integer) + 1,
            project_id=bindparam("b_project"),
            user_id=bindparam("b_user"),
            consumer_type_id=func.coalesce(bindparam("b_type", type_=Integer),
                                           _consumers.c.consumer_type_id),
            updated_at=bindparam("b_now"))
)
_DROP_CONSUMER = delete(_consumers).where(
    _consumers.c.id == bindparam("b_id"), _consumers.c.generation == bindparam("b_gen"))
_BUMP_PROVIDER = (
    update(_rp)
    .where(_rp.c.id == bindparam("b_id"), _rp.c.generation == bindparam("b_gen"))
    .values(generation=bindparam("b_gen", type_=Integer) + 1, updated_at=bindparam("b_now"))
)


_BUMP_BY_UUID = (
    update(_rp)
    .where(_rp.c.uuid.in_(bindparam("uuids", expanding=True)))
    .values(generation=_rp.c.generation + 1, updated_at=bindparam("b_now"))
)


async def lock_by_bumping(conn: AsyncConnection, uuids: list[str], now: datetime) -> int:
    """Bump the generations of these providers (by uuid), which locks their
    rows until the transaction ends (InnoDB locks them in uuid order, as
    :func:`.claim_reads.lock_providers` does); how many there were."""
    if not uuids:
        return 0
    result = await conn.execute(_BUMP_BY_UUID, {"uuids": uuids, "b_now": now})
    return int(result.rowcount)


async def write_claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    delete_allocations: list[str],
    allocations: list[tuple[int, str, int, int]],
    new_consumers: list[tuple[str, int, int, int | None]],
    consumers: list[tuple[int, int, int, int, int | None]],
    drop_consumers: list[tuple[int, int]],
    providers: list[tuple[int, int]],
) -> tuple[int, int, int, int]:
    """Every write of a claim (see :class:`.claim_writes.ClaimWrites`); the
    counts of created, updated and dropped consumers and of bumped providers;
    raises :class:`ProviderGenerationRace` when a provider moved."""

    async def many(statement: Any, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        return int((await conn.execute(statement, rows)).rowcount)

    bumped = await many(_BUMP_PROVIDER, [
        {"b_id": id_, "b_gen": gen, "b_now": now} for id_, gen in sorted(providers)])
    if bumped != len(providers):
        raise ProviderGenerationRace()
    if delete_allocations:
        await conn.execute(_DELETE_ALLOCATIONS, {"consumers": delete_allocations})
    await many(insert(_alloc), [
        {"resource_provider_id": rp, "consumer_id": consumer, "resource_class_id": rc,
         "used": used, "created_at": now}
        for rp, consumer, rc, used in allocations
    ])
    # (SQLite: the write lock is held since BEGIN, nobody else can have created
    # them; MySQL: a duplicate key retries the whole claim)
    await many(insert(_consumers), [
        {"uuid": uuid, "project_id": project, "user_id": user, "consumer_type_id": ctype,
         "generation": 1, "created_at": now}
        for uuid, project, user, ctype in new_consumers
    ])
    updated = await many(_UPDATE_CONSUMER, [
        {"b_id": id_, "b_gen": gen, "b_project": project, "b_user": user, "b_type": ctype,
         "b_now": now}
        for id_, gen, project, user, ctype in consumers
    ])
    dropped = await many(_DROP_CONSUMER, [
        {"b_id": id_, "b_gen": gen} for id_, gen in drop_consumers])
    return len(new_consumers), updated, dropped, bumped
