"""Consumers and the projects, users and consumer types they point at.

Projects, users and consumer types are created on first use (see
:func:`resolve_names`, which also caches their ids). The inserts are
race-safe: ``INSERT ... ON CONFLICT DO NOTHING`` and a re-read. On PostgreSQL
(SERIALIZABLE) a row another transaction committed after our snapshot makes
the insert fail with a serialization error, and the unit of work is retried
whole; on SQLite the write lock is held from the start.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Column, Engine, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import models
from app.db.dialect import upsertable_insert
from app.db.engine import run_write

_consumers = models.consumers
_projects = models.projects
_users = models.users
_types = models.consumer_types

UNKNOWN_CONSUMER_TYPE = "unknown"


@dataclass
class ConsumerRow:
    id: int
    uuid: str
    generation: int
    project_id: int
    user_id: int
    consumer_type_id: int | None


def _insert(conn: AsyncConnection, table: Table) -> Any:
    return upsertable_insert(conn, table)


async def _ids_by_name(
    conn: AsyncConnection, table: Table, column: Column, names: Iterable[str], now: datetime
) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    query = select(column, table.c.id).where(column.in_(wanted))
    found = {name: id_ for name, id_ in await conn.execute(query)}
    missing = [name for name in wanted if name not in found]
    if missing:
        await conn.execute(
            _insert(conn, table).on_conflict_do_nothing(),
            [{column.name: name, "created_at": now} for name in missing],
        )
        found.update(
            {name: id_ for name, id_ in await conn.execute(query.where(column.in_(missing)))}
        )
    return found


async def project_ids(conn: AsyncConnection, names: Iterable[str], now: datetime
                      ) -> dict[str, int]:
    return await _ids_by_name(conn, _projects, _projects.c.external_id, names, now)


async def user_ids(conn: AsyncConnection, names: Iterable[str], now: datetime) -> dict[str, int]:
    return await _ids_by_name(conn, _users, _users.c.external_id, names, now)


async def consumer_type_ids(conn: AsyncConnection, names: Iterable[str], now: datetime
                            ) -> dict[str, int]:
    return await _ids_by_name(conn, _types, _types.c.name, names, now)


async def delete_consumers_by_uuid(conn: AsyncConnection, uuids: list[str]) -> None:
    if uuids:
        await conn.execute(delete(_consumers).where(_consumers.c.uuid.in_(uuids)))


# -------------------------------------------------------------- name cache


@dataclass
class Names:
    """Ids of the projects, users and consumer types some claims name."""

    projects: dict[str, int]
    users: dict[str, int]
    types: dict[str, int]


# Ids of external project/user ids and consumer type names never change once
# created (no API deletes them), so each process remembers them per database.
_CACHE_LIMIT = 50_000
_name_caches: "WeakKeyDictionary[Engine, dict[tuple[str, str], int]]" = WeakKeyDictionary()


def _cache(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    cache = _name_caches.get(engine.sync_engine)
    if cache is None:
        cache = _name_caches[engine.sync_engine] = {}
    return cache


async def resolve_names(
    engine: AsyncEngine,
    projects: Iterable[str],
    users: Iterable[str],
    types: Iterable[str],
    *,
    now: datetime,
    attempts: int,
) -> Names:
    """Ids for the names, creating the missing ones in a short transaction of
    their own (before, not inside, the claim that needs them)."""
    cache = _cache(engine)
    wanted = {"p": set(projects), "u": set(users), "t": set(types)}
    missing = {kind: {n for n in names if (kind, n) not in cache}
               for kind, names in wanted.items()}
    if any(missing.values()):

        async def create(conn: AsyncConnection) -> dict[tuple[str, str], int]:
            found: dict[tuple[str, str], int] = {}
            for kind, ensure in (("p", project_ids), ("u", user_ids), ("t", consumer_type_ids)):
                if missing[kind]:
                    ids = await ensure(conn, missing[kind], now)
                    found.update({(kind, name): id_ for name, id_ in ids.items()})
            return found

        created = await run_write(engine, create, attempts=attempts)
        if len(cache) + len(created) > _CACHE_LIMIT:
            cache.clear()
        cache.update(created)
        lookup = {**cache, **created}
    else:
        lookup = cache
    return Names(
        {name: lookup[("p", name)] for name in wanted["p"]},
        {name: lookup[("u", name)] for name in wanted["u"]},
        {name: lookup[("t", name)] for name in wanted["t"]},
    )
