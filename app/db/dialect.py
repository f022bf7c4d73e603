"""What differs between the database dialects, in one place.

Repositories ask here instead of testing ``conn.dialect.name`` themselves
(candidate-search statements keep their own dialect-specific SQL next to the
statements, see :mod:`app.db.repositories.candidates`).
"""

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def name_of(conn: AsyncConnection | Connection) -> str:
    return conn.dialect.name


def is_postgresql(conn: AsyncConnection | Connection) -> bool:
    return conn.dialect.name == POSTGRESQL


def upsertable_insert(conn: AsyncConnection | Connection, table: Table) -> Any:
    """The dialect's INSERT construct (it has ``on_conflict_do_nothing``)."""
    dialect = postgresql if is_postgresql(conn) else sqlite
    return dialect.insert(table)


def insert_ignoring_duplicates(conn: AsyncConnection | Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect.

    Concurrent creators of the same unique row then do not fail on the key:
    the loser inserts nothing (or, at SERIALIZABLE on PostgreSQL, gets a
    serialization failure and the unit of work is retried).
    """
    return upsertable_insert(conn, table).on_conflict_do_nothing()
