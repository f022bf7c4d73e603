"""Engine creation, per-dialect connection set-up, and what counts as retryable.

The units of work themselves are :class:`app.db.database.Database`. On SQLite
the write lock is taken up front with ``BEGIN IMMEDIATE`` (for connections
marked with :data:`WRITE_OPTION`); aiosqlite's default (no BEGIN before the
first SELECT) lets concurrent claims over-commit.

On MySQL/MariaDB each connection runs in ``TRADITIONAL`` SQL mode (errors, not
silent truncation, as the reference's oslo.db sets it) plus
``NO_AUTO_VALUE_ON_ZERO`` (resource class VCPU has id 0), and answers matched,
not changed, rows (the compare-and-swap counts rely on it; SQLAlchemy's MySQL
dialects ask for ``CLIENT_FOUND_ROWS``).
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.urls import async_url

SERIALIZATION_FAILURES = ("40001", "40P01")
WRITE_OPTION = "placement_write"
MYSQL_SQL_MODE = "TRADITIONAL,NO_AUTO_VALUE_ON_ZERO"

# MySQL/MariaDB error numbers worth retrying the whole unit of work on: deadlock
# (also Galera's certification failure and brute-force abort), lock wait
# timeout, MariaDB's "record has changed since last read" (snapshot isolation),
# a duplicate key (two writers creating the same row) and a foreign key that
# failed (a row referenced or unreferenced meanwhile): the retry sees the rows.
MYSQL_RETRYABLE = frozenset({1213, 1205, 1020, 1062, 1451, 1452})
# ... and those that mean the server cannot answer now: a Galera node outside the
# primary component (1047 "WSREP has not yet prepared node"), shutting down
# (1053), connections refused, lost or killed.
MYSQL_UNAVAILABLE = frozenset({1047, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})


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
    mysql = url.startswith("mysql")
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        # MySQL: a connection dropped by the server's wait_timeout is replaced.
        pool_recycle=3600 if mysql else -1,
        isolation_level="READ COMMITTED",
    )
    if mysql:
        _configure_mysql(engine)
    return engine


def _configure_mysql(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION sql_mode = '{MYSQL_SQL_MODE}'")
        cursor.close()


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


def mysql_error_number(exc: DBAPIError) -> int | None:
    """The MySQL/MariaDB error number of ``exc`` (None: not a MySQL error)."""
    return _driver_error_number(getattr(exc, "orig", None))


def _driver_error_number(error: object) -> int | None:
    # MySQL drivers carry the server's error number as their first argument.
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot answer now (a 503, not a 500).

    Also the driver's own errors: statements SQLAlchemy sends on the raw
    connection (the isolation level) are not wrapped.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    if isinstance(exc, OSError):  # refused, reset: below the DB-API
        return True
    number = _driver_error_number(exc)
    # A driver's "not connected" (InterfaceError 0): a connection the server dropped.
    return number in MYSQL_UNAVAILABLE or (number == 0 and type(exc).__name__ == "InterfaceError")


def is_serialization_failure(exc: DBAPIError) -> bool:
    if mysql_error_number(exc) in MYSQL_RETRYABLE:
        return True
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in SERIALIZATION_FAILURES:
        return True
    # SQLite answers "database is locked" when the busy timeout runs out.
    return "database is locked" in str(orig or exc)
