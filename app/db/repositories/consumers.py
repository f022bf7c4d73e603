"""Consumers and the projects, users and consumer types they point at.

Projects, users and consumer types are created on first use. The inserts are
race-safe: ``INSERT ... ON CONFLICT DO NOTHING`` and a re-read. On PostgreSQL
(SERIALIZABLE) a row another transaction committed after our snapshot makes
the insert fail with a serialization error, and the unit of work is retried
whole; on SQLite the write lock is held from the start.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.errors import CONCURRENT_UPDATE, Conflict

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


def _insert(conn: AsyncConnection, table: Table):  # type: ignore[no-untyped-def]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


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


async def consumers_by_uuid(conn: AsyncConnection, uuids: list[str]) -> dict[str, ConsumerRow]:
    if not uuids:
        return {}
    rows = await conn.execute(
        select(
            _consumers.c.id,
            _consumers.c.uuid,
            _consumers.c.generation,
            _consumers.c.project_id,
            _consumers.c.user_id,
            _consumers.c.consumer_type_id,
        ).where(_consumers.c.uuid.in_(uuids))
    )
    return {row.uuid: ConsumerRow(*row) for row in rows}


async def create_consumers(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    """Insert new consumers; a concurrent creator of the same uuid is a conflict."""
    if not rows:
        return
    created = await conn.execute(
        _insert(conn, _consumers).values(rows).on_conflict_do_nothing()
        .returning(_consumers.c.uuid)
    )
    if len(created.all()) != len(rows):
        raise _consumer_raced()


def _consumer_raced() -> Conflict:
    return Conflict(
        "Another thread concurrently updated the data. Please retry your update",
        code=CONCURRENT_UPDATE,
    )


async def save_consumer(
    conn: AsyncConnection,
    consumer: ConsumerRow,
    *,
    project_id: int,
    user_id: int,
    consumer_type_id: int | None,
    now: datetime,
) -> None:
    """Bump the generation (compare-and-swap) and record project/user/type."""
    values: dict[str, object] = {"generation": consumer.generation + 1, "updated_at": now}
    if project_id != consumer.project_id or user_id != consumer.user_id:
        values["project_id"] = project_id
        values["user_id"] = user_id
    if consumer_type_id is not None and consumer_type_id != consumer.consumer_type_id:
        values["consumer_type_id"] = consumer_type_id
    result = await conn.execute(
        update(_consumers)
        .where(_consumers.c.id == consumer.id, _consumers.c.generation == consumer.generation)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _consumer_raced()


async def delete_consumer(conn: AsyncConnection, consumer: ConsumerRow) -> None:
    """Delete a consumer left without allocations, if nobody moved it meanwhile."""
    result = await conn.execute(
        delete(_consumers).where(
            _consumers.c.id == consumer.id, _consumers.c.generation == consumer.generation
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _consumer_raced()


async def delete_consumers_by_uuid(conn: AsyncConnection, uuids: list[str]) -> None:
    if uuids:
        await conn.execute(delete(_consumers).where(_consumers.c.uuid.in_(uuids)))
