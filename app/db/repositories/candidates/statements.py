"""The statement cache and the bind parameters every candidate statement uses.

Statements are built once per *shape* (how many classes, trait sets,
aggregate sets, which filters are present...) and cached; every value travels
as a bind parameter, id lists as one array (PostgreSQL) or JSON (SQLite)
parameter (:func:`app.db.dialect.in_list_parameter`). Building SQLAlchemy
expressions costs more than running them.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BindParameter, Integer, bindparam
from sqlalchemy.ext.asyncio import AsyncConnection

_STATEMENTS: dict[tuple[Any, ...], Any] = {}
MAX_STATEMENTS = 1024


def cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    statement = _STATEMENTS.get(key)
    if statement is None:
        if len(_STATEMENTS) >= MAX_STATEMENTS:
            _STATEMENTS.clear()
        statement = _STATEMENTS[key] = build()
    return statement


def int_param(name: str) -> BindParameter[int]:
    return bindparam(name, type_=Integer)


def int_list(name: str) -> BindParameter[Any]:
    """A short list of ids (traits, aggregates, classes): ``IN (...)`` expanded."""
    return bindparam(name, type_=Integer, expanding=True)


async def fetch_all(conn: AsyncConnection, statement: Any, params: Any = None) -> Sequence[Any]:
    """Every row at once: the driver's bulk path, not a fetch per row."""
    result = await conn.execute(statement, params)
    return result.all()
