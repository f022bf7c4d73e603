"""One autocommitted statement on the driver's own connection (PostgreSQL, asyncpg).

The provider set-up writes are each one statement that is its own transaction
(``Database.single_rows``). Run through SQLAlchemy's ``AsyncConnection``, such a
statement paid several times the driver's own cost in a worker's CPU: the
connection object and its execution options, transaction begin/commit
bookkeeping (no round trip in autocommit, but the calls all the same), the
compiled-cache lookup and the result wrapping, each step hopping in and out
of a greenlet.

Here the statement's ``text()`` is compiled once by the engine's own dialect
(the very SQL SQLAlchemy would send, so there is one text for both paths) and
run with asyncpg's prepared statement cache, on a connection checked out of
the engine's pool (so its size and checkout bound hold) in ONE greenlet hop.
Session settings (statement and lock time limits) are the connection's own, as
for any autocommitted statement. The claims' one-shot statement and the
candidates snapshot's check (the wait for claims in flight, then the catch-up)
run so too: they are the statements of every scheduling decision (~0.45 ms of a
worker's CPU saved on each, of ~0.65 ms for a trivial one through SQLAlchemy).

What the connection's failure means is the caller's (``Database``); here a
connection that failed so, or whose statement was cancelled, is dropped
rather than pooled, and a lost one invalidates the connections pooled before
it, as SQLAlchemy does for a disconnect.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, TextClause
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_, greenlet_spawn

from app.db.engine import (
    SERIALIZATION_FAILURES,
    is_connection_lost,
    is_unavailable,
    sqlstate_of,
)

DRIVER = "asyncpg"

# What runs there: text, or a Core query whose results need no type processing.
Statement = TextClause | Select[Any]
# Runs one statement autocommitted and answers its rows (``Database.single_rows``
# and ``Database.single_read_rows``).
Rows = Callable[[Statement, Mapping[str, Any]], Awaitable[Sequence[Sequence[Any]]]]


class Refused(Exception):
    """The database refused the statement (it wrote nothing): ``sqlstate`` says why."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    @property
    def lost_race(self) -> bool:
        """Refused for a concurrent writer: a key taken meanwhile (class 23,
        integrity), a lock race or a deadlock. Undone whole, so the caller's
        ordinary unit of work may answer instead."""
        return self.sqlstate.startswith("23") or self.sqlstate in SERIALIZATION_FAILURES


class ClosedBeforeSending(Exception):
    """The pooled connection was already closed (seen by the driver, no round
    trip): nothing was sent, the statement may run on a fresh one."""


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in positional order ($1, $2, ...)
    values: Mapping[str, Any]  # of the parameters the statement gives a value itself


def applies(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql" and engine.dialect.driver == DRIVER


class DriverStatements:
    """Runs statements of one engine on its pooled driver connections."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.sync_engine
        # Keyed by the statement object: callers keep theirs (module constants,
        # or cached per bounded shape), so this stays small.
        self._compiled: dict[Statement, _Compiled] = {}

    def _compile(self, clause: Statement) -> _Compiled:
        compiled = clause.compile(dialect=self._engine.dialect)
        values = {key: bind.effective_value for key, bind in compiled.binds.items()
                  if not bind.required}
        found = _Compiled(str(compiled), tuple(compiled.positiontup or ()), values)
        self._compiled[clause] = found
        return found

    async def rows(self, clause: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The rows ``clause`` (a ``text()`` or a Core statement whose results
        need no type processing) answers, run autocommitted. Raises
        :class:`Refused` for what the database refused, :class:`ClosedBeforeSending`,
        or the driver's error when the connection failed."""
        compiled = self._compiled.get(clause) or self._compile(clause)
        values = compiled.values
        args = [params[name] if name in params else values[name] for name in compiled.names]
        rows: list[Sequence[Any]] = await greenlet_spawn(self._run, compiled.sql, args)
        return rows

    def _run(self, sql: str, args: list[Any]) -> list[Sequence[Any]]:
        # Inside a greenlet: the pool may open a connection, and returning one
        # to a full pool closes it, both awaiting the driver.
        pooled: PoolProxiedConnection = self._engine.raw_connection()
        try:
            driver: Any = pooled.driver_connection
            if driver.is_closed():
                pooled.invalidate()
                raise ClosedBeforeSending()
            rows: list[Sequence[Any]] = await_(driver.fetch(sql, *args))
            return rows
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) or is_unavailable(exc):
                self._drop(pooled, exc)
            else:
                sqlstate = sqlstate_of(exc)
                if sqlstate is not None:
                    raise Refused(sqlstate, str(exc)) from exc
            raise
        finally:
            pooled.close()

    def _drop(self, pooled: PoolProxiedConnection, exc: BaseException) -> None:
        if not pooled.is_valid:
            return
        if is_connection_lost(exc):
            # After a database restart every pooled connection is stale.
            self._engine.pool._invalidate(pooled, exc)
        else:
            pooled.invalidate()
