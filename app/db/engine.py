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

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState

from app.db import mysql_batch
from app.db.timeouts import Timeouts, mysql_session_limits, postgresql_server_settings
from app.db.urls import async_url

SERIALIZATION_FAILURES = ("40001", "40P01")
WRITE_OPTION = "placement_write"
MYSQL_SQL_MODE = "TRADITIONAL,NO_AUTO_VALUE_ON_ZERO"
# Key of a MySQL connection's current statement bound in its ``info``.
STATEMENT_LIMIT_INFO = "placement_statement_limit"

# MySQL/MariaDB error numbers worth retrying the whole unit of work on: deadlock
# (also Galera's certification failure and brute-force abort), MariaDB's "record
# has changed since last read" (snapshot isolation), a duplicate key (two
# writers creating the same row) and a foreign key that failed (a row
# referenced or unreferenced meanwhile): the retry sees the rows. A lock wait
# timeout (1205) is the configured bound on waiting: a 503, not retried.
MYSQL_RETRYABLE = frozenset({1213, 1020, 1062, 1451, 1452})
# PostgreSQL's counterparts of the last two: a unique or foreign key violation
# (units of work under READ COMMITTED rest on these keys).
POSTGRESQL_KEY_VIOLATIONS = frozenset({"23505", "23503"})
# ... and those that mean the server cannot answer now: a Galera node outside the
# primary component (1047 "WSREP has not yet prepared node"), shutting down
# (1053), connections refused, lost or killed.
MYSQL_UNAVAILABLE = frozenset({1047, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})
# Of those, the connection is gone (a fresh one may well work: retried).
MYSQL_LOST = MYSQL_UNAVAILABLE - {1047}
# A bound on waiting was exceeded: lock wait (1205), MariaDB's
# max_statement_time (1969), MySQL's max_execution_time (3024).
MYSQL_TIMEOUTS = frozenset({1205, 1969, 3024})
# PostgreSQL: class 08 (connection exception), the server shutting down or not
# accepting connections yet (57P01-57P03) ...
POSTGRESQL_LOST_PREFIX = "08"
POSTGRESQL_LOST = frozenset({"57P01", "57P02", "57P03"})
# admin_shutdown: the server ended this session (and rolled back its work).
POSTGRESQL_ENDED_SESSION = "57P01"
# ... and statement_timeout (57014 query_canceled) or lock_timeout (55P03).
POSTGRESQL_TIMEOUTS = frozenset({"57014", "55P03"})
# SQLite: the busy timeout ran out, or the file cannot be written or read.
SQLITE_UNAVAILABLE = (
    "database is locked",
    "disk i/o error",
    "readonly database",
    "unable to open database file",
    "database or disk is full",
    "database disk image is malformed",
)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    timeouts: Timeouts | None = None,
) -> AsyncEngine:
    """The engine for ``url``; ``timeouts`` bound waiting for the pool, locks and
    statements (the session defaults are the read kind's; see app/db/timeouts.py).

    Pooled connections are not pinged at checkout: a connection found dead
    (see :func:`is_connection_lost`) invalidates the whole pool, and the unit of
    work is retried on a fresh one (``Database``), which costs nothing while the
    database is up.
    """
    # placement.conf's synchronous forms (postgresql+psycopg2://, mysql+pymysql://,
    # sqlite:///) name their async counterparts here.
    url = async_url(url)
    limits = timeouts or Timeouts()
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": limits.lock})
        _configure_sqlite(engine, limits.lock)
        _mark_lost_connections(engine)
        return engine
    mysql = url.startswith("mysql")
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args = {
            "server_settings": postgresql_server_settings(limits),
            "timeout": limits.connect,
        }
    else:
        connect_args = {"connect_timeout": max(int(limits.connect), 1)}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=limits.pool,
        pool_pre_ping=False,
        # MySQL: a connection dropped by the server's wait_timeout is replaced.
        pool_recycle=3600 if mysql else -1,
        # MySQL: the pool's own rollback on return is replaced by one sent only
        # when the driver reports a transaction open (_configure_mysql).
        pool_reset_on_return=None if mysql else "rollback",
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )
    if mysql:
        _configure_mysql(engine, limits)
        mysql_batch.install(engine)
    _mark_lost_connections(engine)
    return engine


def _mark_lost_connections(engine: AsyncEngine) -> None:
    """Errors that mean the connection is gone count as disconnects: SQLAlchemy
    then invalidates the connection and every other one pooled before it (after a
    database restart, all of them are stale)."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if not context.is_disconnect and is_connection_lost(context.original_exception):
            context.is_disconnect = True


def _configure_mysql(engine: AsyncEngine, limits: Timeouts) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION sql_mode = '{MYSQL_SQL_MODE}'")
        cursor.execute("SELECT VERSION()")
        version = str(cursor.fetchone()[0])
        cursor.execute(mysql_session_limits(limits, limits.read, "mariadb" in version.lower()))
        cursor.close()
        # What the session's statement bound is now (Database sets another per kind).
        record.info[STATEMENT_LIMIT_INFO] = limits.read

    _skip_idle_round_trips(engine)


def _skip_idle_round_trips(engine: AsyncEngine) -> None:
    """Spare a MySQL connection the round trips that change nothing.

    SQLAlchemy sets a unit of work's isolation level on checkout and puts the
    default back on return, each ``SET SESSION TRANSACTION ...`` plus
    ``COMMIT`` (four round trips), and rolls back on return even after a
    COMMIT (a fifth). Here the level a session holds is remembered per driver
    connection, so setting the level it already has sends nothing (the units
    of work at READ COMMITTED, the engine's default, then send none); and the
    rollback on return is sent only when the driver's last reply said a
    transaction was open. A unit of work that failed is rolled back by
    ``Database`` (or by closing its connection) before it gets here.
    """
    dialect = engine.sync_engine.dialect
    set_level = dialect.set_isolation_level
    # The session's transaction isolation level, per driver connection (the
    # adapter cannot be weakly referenced): a reconnection is a new connection,
    # whose level is then set. AUTOCOMMIT is the driver's flag, which leaves
    # the session's level as it was: switching it on and off costs one round
    # trip each (the driver skips it when the flag is already so).
    levels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def set_isolation_level(dbapi_connection: Any, level: Any) -> None:
        driver = dbapi_connection.driver_connection
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit(True)
            return
        dbapi_connection.autocommit(False)
        if levels.get(driver) == level:
            return
        levels.pop(driver, None)  # unknown if setting it fails half-way
        set_level(dbapi_connection, level)
        levels[driver] = level

    # An instance attribute: SQLAlchemy calls it as self.set_isolation_level.
    setattr(dialect, "set_isolation_level", set_isolation_level)  # noqa: B010

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        if state.transaction_was_reset or not state.asyncio_safe:
            return
        if dbapi_connection.driver_connection.get_transaction_status():
            dbapi_connection.rollback()


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # A writer waits this long for another's lock, then answers 503.
        cursor.execute(f"PRAGMA busy_timeout={max(int(busy_timeout * 1000), 1)}")
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


def _driver_error(exc: BaseException) -> BaseException:
    # Also the driver's own errors: statements SQLAlchemy sends on the raw
    # connection (the isolation level) are not wrapped.
    return (exc.orig or exc) if isinstance(exc, DBAPIError) else exc


def sqlstate_of(error: BaseException | None) -> str | None:
    """The SQLSTATE a driver error carries (asyncpg's ``sqlstate``, psycopg's ``pgcode``)."""
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means this connection is gone or none could be opened:
    a unit of work that had not sent COMMIT may run again on a fresh one."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    error = _driver_error(exc)
    if any(_is_asyncpg_unsent(cause) for cause in _causes(error)):
        return True
    if isinstance(error, OSError):  # refused, reset: below the DB-API
        return True
    state = sqlstate_of(error)
    if state is not None and (state.startswith(POSTGRESQL_LOST_PREFIX) or state in POSTGRESQL_LOST):
        return True
    text = str(error).lower()
    if "connection is closed" in text or "connection was closed" in text:
        return True  # asyncpg's InterfaceError on a connection that died
    number = _driver_error_number(error)
    # A driver's "not connected" (InterfaceError 0): a connection the server dropped.
    return number in MYSQL_LOST or (number == 0 and type(error).__name__ == "InterfaceError")


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, then what caused it, and so on (drivers chain the server's own
    message below their "connection closed" error)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8 and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_lost_uncommitted(exc: BaseException) -> bool:
    """Whether a lost connection certainly committed nothing of what was in flight,
    so that even a unit of work that had sent its COMMIT (or an autocommitted
    statement) may run again:

    * the server said it ended the session (PostgreSQL 57P01: a shutdown, a
      restart, ``pg_terminate_backend``): it rolls back what was in progress
      before saying so, and a statement it had committed was answered first;
    * asyncpg refused to send (another operation in progress: the server's
      goodbye, arrived on a pooled connection, is still being read).
    """
    for error in _causes(exc):
        if sqlstate_of(error) == POSTGRESQL_ENDED_SESSION:
            return True
        if _is_asyncpg_unsent(error):
            return True
    return False


def _is_asyncpg_unsent(error: BaseException) -> bool:
    # asyncpg checks its protocol state before it writes a message.
    return (type(error).__name__ == "InternalClientError"
            and "cannot switch to state" in str(error))


def is_timeout(exc: BaseException) -> bool:
    """Whether a configured bound on waiting ran out (statement, lock, pool)."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection in time
        return True
    error = _driver_error(exc)
    if sqlstate_of(error) in POSTGRESQL_TIMEOUTS or _driver_error_number(error) in MYSQL_TIMEOUTS:
        return True
    return "database is locked" in str(error).lower()


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot answer now (a 503, not a 500):
    a lost connection, a bound on waiting exceeded, a server not ready, a SQLite
    file that cannot be written."""
    if is_connection_lost(exc) or is_timeout(exc):
        return True
    error = _driver_error(exc)
    if _driver_error_number(error) in MYSQL_UNAVAILABLE:
        return True
    text = str(error).lower()
    return type(error).__name__ == "OperationalError" and any(
        marker in text for marker in SQLITE_UNAVAILABLE)


def is_serialization_failure(exc: DBAPIError) -> bool:
    if mysql_error_number(exc) in MYSQL_RETRYABLE:
        return True
    sqlstate = sqlstate_of(exc.orig)
    return sqlstate in SERIALIZATION_FAILURES or sqlstate in POSTGRESQL_KEY_VIOLATIONS
