"""What differs between the database dialects, in one place.

Repositories ask here instead of testing ``conn.dialect.name`` themselves
(candidate-search statements keep their own dialect-specific SQL next to the
statements, see :mod:`app.db.repositories.candidates`).
"""

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Integer, String, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

POSTGRESQL = "postgresql"


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


# ------------------------------------------------ lists of values as one parameter
# A list of any length travels as ONE bind parameter (an array on PostgreSQL,
# JSON text on SQLite): the statement's text does not depend on the length,
# so it can be built once and cached (the candidate search relies on this).

Listed = TypeVar("Listed", int, str)


def in_list_parameter(
    dialect: str,
    column: ColumnElement[Any],
    name: str,
    element: type[Integer] | type[String] = Integer,
) -> ColumnElement[bool]:
    """``column`` in the list passed as parameter ``name`` (see ``list_parameter``).

    As a subquery over the unnested list: a semi-join the planner can hash.
    (``= ANY(array parameter)`` is compared element by element, row by row, in
    the generic plans PostgreSQL switches prepared statements to.)
    """
    if dialect == POSTGRESQL:
        return column.in_(select(func.unnest(bindparam(name, type_=postgresql.ARRAY(element)))))
    each = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))


def list_parameter(dialect: str, values: Iterable[Listed]) -> list[Listed] | str:
    """The value of an ``in_list_parameter`` parameter: sorted, without duplicates."""
    ordered = sorted(set(values))
    return ordered if dialect == POSTGRESQL else json.dumps(ordered)
