"""Engine creation and units of work.

Writes run as a unit of work: a function of a connection that is executed in
a fresh transaction and, on PostgreSQL, at SERIALIZABLE isolation, retried as
a whole on serialization failures (SQLSTATE 40001/40P01, which can surface at
COMMIT). On SQLite the write lock is taken up front with ``BEGIN IMMEDIATE``;
aiosqlite's default (no BEGIN before the first SELECT) lets concurrent claims
over-commit.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.exceptions import ConcurrentUpdate

LOG = logging.getLogger(__name__)

T = TypeVar("T")

SERIALIZATION_FAILURES = ("40001", "40P01")
WRITE_OPTION = "placement_write"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        isolation_level="READ COMMITTED",
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def is_serialization_failure(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in SERIALIZATION_FAILURES:
        return True
    # SQLite answers "database is locked" when the busy timeout runs out.
    return "database is locked" in str(orig or exc)


async def run_write(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    attempts: int = 20,
) -> T:
    """Run ``work`` in its own serializable transaction, retrying it whole."""
    options: dict[str, Any] = {WRITE_OPTION: True}
    if not is_sqlite(engine):
        options["isolation_level"] = "SERIALIZABLE"
    delay = 0.005
    for attempt in range(1, attempts + 1):
        try:
            async with engine.connect() as raw:
                conn = await raw.execution_options(**options)
                async with conn.begin():
                    return await work(conn)
        except DBAPIError as exc:
            if not is_serialization_failure(exc) or attempt == attempts:
                if is_serialization_failure(exc):
                    raise ConcurrentUpdate() from exc
                raise
            LOG.debug("serialization failure, retrying (attempt %d)", attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.2)
    raise AssertionError("unreachable")


async def run_read(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in one read transaction (one consistent snapshot)."""
    async with engine.connect() as raw:
        conn = raw
        if not is_sqlite(engine):
            conn = await raw.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return await work(conn)
