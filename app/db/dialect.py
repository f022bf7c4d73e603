"""What differs between the database dialects, in one place.

Repositories ask here instead of testing ``conn.dialect.name`` themselves
(candidate-search statements keep their own dialect-specific SQL next to the
statements, see :mod:`app.db.repositories.candidates`).
"""

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Integer, String, Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import functions

POSTGRESQL = "postgresql"
MYSQL = "mysql"


def is_postgresql(conn: AsyncConnection | Connection) -> bool:
    return conn.dialect.name == POSTGRESQL


def is_mysql(conn: AsyncConnection | Connection) -> bool:
    return conn.dialect.name == MYSQL


def collation_key(conn: AsyncConnection | Connection) -> Callable[[str], str]:
    """How the database's collation tells names apart, as a key function.

    Exactly on PostgreSQL and SQLite; on MySQL/MariaDB (``utf8mb4_general_ci``)
    without case and trailing spaces, so a lookup by a name matches the row the
    database says is equal (the reference behaves so on MySQL).
    """
    if is_mysql(conn):
        return _mysql_key
    return str


def _mysql_key(name: str) -> str:
    return name.rstrip(" ").lower()


@compiles(functions.sum, MYSQL)
def _integer_sum_on_mysql(element: functions.sum[Any], compiler: Any, **kw: Any) -> str:
    """MySQL's SUM of integers is a DECIMAL; every sum here adds integers (amounts,
    class bits), so on MySQL it is cast back to one (BIGINT, as PostgreSQL's)."""
    return f"CAST({compiler.visit_function(element, **kw)} AS SIGNED)"


def insert_ignoring_duplicates(conn: AsyncConnection | Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect.

    Concurrent creators of the same unique row then do not fail on the key:
    the loser inserts nothing (or, at SERIALIZABLE on PostgreSQL, gets a
    serialization failure and the unit of work is retried). On MySQL, an
    ``INSERT IGNORE`` (the columns' values are validated before they get here,
    so it ignores nothing but duplicates).
    """
    # Each dialect's module imported on first use: a worker loads only its
    # own database's (the other two cost about 1.5 MB a worker).
    if is_mysql(conn):
        from sqlalchemy.dialects import mysql

        return mysql.insert(table).prefix_with("IGNORE")
    if is_postgresql(conn):
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


# ------------------------------------------------ lists of values as one parameter
# A list of any length travels as ONE bind parameter (an array on PostgreSQL,
# JSON text on SQLite): the statement's text does not depend on the length,
# so it can be built once and cached (the candidate search relies on this).
# On MySQL an expanding parameter: SQLAlchemy caches the statement and expands
# the list at execution (MySQL prepares nothing server-side anyway).

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
        from sqlalchemy.dialects import postgresql

        return column.in_(select(func.unnest(bindparam(name, type_=postgresql.ARRAY(element)))))
    if dialect == MYSQL:
        return column.in_(bindparam(name, expanding=True))
    each = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))


def list_parameter(dialect: str, values: Iterable[Listed]) -> list[Listed] | str:
    """The value of an ``in_list_parameter`` parameter: sorted, without duplicates."""
    ordered = sorted(set(values))
    return json.dumps(ordered) if dialect == "sqlite" else ordered
