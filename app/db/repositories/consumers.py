"""Consumers and the projects, users and consumer types they point at.

Projects, users and consumer types are created on first use (see
:func:`ensure_ids`; the claims service caches their ids). The inserts are
race-safe: ``INSERT ... ON CONFLICT DO NOTHING`` and a re-read. On PostgreSQL
(SERIALIZABLE) a row another transaction committed after our snapshot makes
the insert fail with a serialization error, and the unit of work is retried
whole; on SQLite the write lock is held from the start.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.database import RowMoved
from app.db.dialect import collation_key, insert_ignoring_duplicates

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


async def _ids_by_name(
    conn: AsyncConnection, table: Table, column: Column[str], names: Iterable[str], now: datetime
) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    key = collation_key(conn)
    query = select(column, table.c.id).where(column.in_(wanted))
    stored = {key(name): id_ for name, id_ in await conn.execute(query)}
    missing = [name for name in wanted if key(name) not in stored]
    if missing:
        await conn.execute(
            insert_ignoring_duplicates(conn, table),
            [{column.name: name, "created_at": now} for name in missing],
        )
        stored.update({key(name): id_ for name, id_
                       in await conn.execute(query.where(column.in_(missing)))})
    if any(key(name) not in stored for name in missing):
        # Created by a writer that committed after this transaction's snapshot.
        raise RowMoved()
    return {name: stored[key(name)] for name in wanted}


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


# ------------------------------------------------------------ ids by name

# Keys of :func:`ensure_ids`: a kind ("p" project, "u" user, "t" consumer
# type) and the external id or type name.
NameKey = tuple[str, str]
PROJECT, USER, CONSUMER_TYPE = "p", "u", "t"


async def ensure_ids(
    conn: AsyncConnection, missing: Mapping[str, Iterable[str]], now: datetime
) -> dict[NameKey, int]:
    """Ids of the projects, users and consumer types named by kind, created if
    absent: a unit of work of its own (before, not inside, the claim that
    needs them)."""
    found: dict[NameKey, int] = {}
    for kind, ensure in ((PROJECT, project_ids), (USER, user_ids), (CONSUMER_TYPE,
                                                                    consumer_type_ids)):
        names = missing.get(kind)
        if names:
            ids = await ensure(conn, names, now)
            found.update({(kind, name): id_ for name, id_ in ids.items()})
    return found
