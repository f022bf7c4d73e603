"""Engine creation, per-dialect connection set-up, and what counts as retryable.

The units of work themselves are :class:`app.db.database.Database`. On SQLite
the write lock is taken up front with ``BEGIN IMMEDIATE`` (for connections
marked with :data:`WRITE_OPTION`); aiosqlite's default (no BEGIN before the
first SELECT) lets concurrent claims over-commit.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.urls import async_url

SERIALIZATION_FAILURES = ("40001", "40P01")
WRITE_OPTION = "placement_write"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> AsyncEngine:
    # placement.conf's synchronous forms (postgresql+psycopg2://, mysql+pymysql://,
    # sqlite:///) name their async counterparts here.
    url = async_url(url)
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
