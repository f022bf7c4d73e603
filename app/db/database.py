"""The database as units of work: ``read``, ``write`` and ``claim``.

A unit of work is a function of a connection. :class:`Database` runs it in a
fresh transaction and owns everything about that transaction:

* ``read``: one consistent snapshot (REPEATABLE READ on server databases);
* ``write``: SERIALIZABLE on PostgreSQL, REPEATABLE READ on MySQL/MariaDB
  (InnoDB's SERIALIZABLE only turns reads into shared locks, and Galera certifies
  at most that; every claim's correctness comes from its generation
  compare-and-swap, which reads the latest row whatever the isolation),
  ``BEGIN IMMEDIATE`` on SQLite; retried whole, from a fresh transaction, on
  serialization failures and deadlocks (which can surface at COMMIT), up to the
  configured attempts with jittered exponential backoff (a compare-and-swap
  that found its row moved, :class:`RowMoved`, is retried alike); exhausted retries are a 409
  ``placement.concurrent_update``;
* ``claim``: a write at READ COMMITTED (server databases) whose work locks
  the rows of the providers it claims against before reading them (claims on
  the same provider queue there, disjoint ones run in parallel; correctness
  comes from the generation compare-and-swap), retried whole when a provider
  generation moved underneath it (:class:`ProviderGenerationRace`, raised by
  the claim's statements).

A unit of work whose connection was lost before it sent COMMIT (a database
restart, a terminated backend, a stale pooled connection) runs again, whole, on
a fresh connection, a bounded number of times with a short backoff; a loss
while COMMIT (or an autocommitted statement) was in flight is ambiguous and
never retried, unless the loss itself says nothing committed (the server ended
the session and said so, or the driver never sent the statement:
``is_lost_uncommitted``; a pooled connection whose backend a restart ended
while it sat idle fails so). What remains, and a
database that cannot answer now (a Galera node outside the primary component,
a bound of ``app/db/timeouts.py`` exceeded, a SQLite file that cannot be
written), is :class:`~app.exceptions.DatabaseUnavailable`, a 503 with
Retry-After. A unit of work cancelled (its client went away) is rolled back by
dropping its connection, never committed.

The retry counters live here; the metrics read them.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import driver_statement
from app.db.driver_statement import ClosedBeforeSending, DriverStatements, Refused, Statement
from app.db.engine import (
    STATEMENT_LIMIT_INFO,
    WRITE_OPTION,
    is_connection_lost,
    is_lost_uncommitted,
    is_serialization_failure,
    is_timeout,
    is_unavailable,
    sqlstate_of,
)
from app.db.timeouts import (
    Kind,
    Timeouts,
    mysql_statement_limit,
    postgresql_statement_limit,
)
from app.exceptions import ConcurrentUpdate, DatabaseUnavailable, PlacementError

LOG = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]


class ProviderGenerationRace(Exception):
    """A provider generation moved during a claim: retry it in a new transaction."""


class RowMoved(Exception):
    """A compare-and-swap on a row this transaction read found it changed: another
    writer committed after the snapshot. In effect a serialization failure (what
    PostgreSQL's SERIALIZABLE raises before the swap, and what MySQL's REPEATABLE
    READ leaves to the swap): ``write`` retries the unit of work, which then reads
    the new row and answers as it should (usually a generation conflict)."""


async def _all_rows(
    conn: AsyncConnection, clause: Statement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    try:
        return (await conn.execute(clause, dict(params))).all()
    except DBAPIError as exc:
        sqlstate = sqlstate_of(exc.orig)
        if sqlstate is not None and not is_unavailable(exc):
            raise Refused(sqlstate, str(exc)) from exc
        raise


class _ProbeDone(Exception):
    """Ends the write probe's unit of work: it is rolled back."""


class _ConnectionLost(Exception):
    """The connection of an attempt was lost before COMMIT: run it again."""


def _known_closed(conn: AsyncConnection) -> bool:
    """Whether the driver knows the connection is closed (no round trip).

    Just checked out, the connection holds its pooled DB-API connection, so
    reading it needs no I/O (no greenlet hop, unlike ``get_raw_connection``)."""
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    is_closed = getattr(driver, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


def _unanswered(exc: Exception, committing: bool, kind: Kind) -> Exception:
    """What an unavailable database's ``exc`` (``is_unavailable``) makes of a
    unit of work: run again (:class:`_ConnectionLost`, when nothing can have
    committed) or a 503."""
    if is_connection_lost(exc) and (not committing or is_lost_uncommitted(exc)):
        return _ConnectionLost()
    if is_timeout(exc):
        # Cut off by a bound: rolled back (an autocommitted statement too).
        LOG.warning("database wait bound exceeded (%s): %s", kind, exc)
    elif committing:
        LOG.warning("database connection lost during COMMIT, outcome unknown: %s", exc)
    else:
        LOG.warning("database unavailable: %s", exc)
    return DatabaseUnavailable()


def reconnect_delays(window: float) -> tuple[float, ...]:
    """Seconds slept before each run of a unit of work after a lost connection:
    at once, then doubling from 0.1 s up to 1 s apart, while the sum stays
    within ``window`` (how long a request waits for a restarting database
    before its 503)."""
    delays = [0.0]
    step = 0.1
    while sum(delays) + step <= window:
        delays.append(step)
        step = min(step * 2, 1.0)
    return tuple(delays)


@dataclass
class DatabaseStats:
    """Process-local counters (exported as metrics)."""

    serialization_retries: int = 0
    claim_retries: int = 0
    reconnects: int = 0
    writes: int = 0  # write units of work committed (candidates snapshots watch it)


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        write_attempts: int = 20,
        claim_attempts: int = 10,
        timeouts: Timeouts | None = None,
        reconnect_window: float = 4.0,
    ) -> None:
        self.engine = engine
        self.timeouts = timeouts or Timeouts()
        self.reconnect_delays = reconnect_delays(reconnect_window)
        self.dialect = engine.dialect.name
        self.write_attempts = max(write_attempts, 1)
        self.claim_attempts = max(claim_attempts, 1)
        self.stats = DatabaseStats()
        self._write_options: dict[str, Any] = {WRITE_OPTION: True}
        self._read_options: dict[str, Any] = {}
        if self.dialect != "sqlite":
            self._write_options["isolation_level"] = (
                "SERIALIZABLE" if self.dialect == "postgresql" else "REPEATABLE READ")
            self._read_options["isolation_level"] = "REPEATABLE READ"
        # On SQLite one process's claims queue here rather than in SQLite's busy
        # handler (which sleeps up to 100 ms between tries).
        self._claim_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Writes whose correctness rests on row locks, keys and compare-and-swap
        # alone run at READ COMMITTED on server databases: claims (a claim first
        # locks the rows of the providers it names, claim_reads.lock_providers, so
        # every later statement reads what the claims before it committed, and
        # claims on disjoint providers never wait for each other), guarded and
        # keyed writes, the healthcheck's write probe.
        self._committed_options = dict(self._write_options)
        if self.dialect != "sqlite":
            self._committed_options["isolation_level"] = "READ COMMITTED"
        self._autocommit_options = {**self._write_options, "isolation_level": "AUTOCOMMIT"}
        self._autocommit_read_options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
        self._driver = DriverStatements(engine) if driver_statement.applies(engine) else None

    async def _attempt(self, work: Work[T], options: dict[str, Any], kind: Kind) -> T:
        """``work`` once, in a fresh transaction on a pooled connection.

        A lost connection before COMMIT is :class:`_ConnectionLost`; other
        failures to answer are a 503. A connection that failed so, or whose unit
        of work was cancelled, is invalidated, not returned to the pool (closing
        it rolls back), so the next unit of work connects anew.
        """
        committing = False
        try:
            async with self.engine.connect() as raw:
                conn = raw
                try:
                    autocommit = options.get("isolation_level") == "AUTOCOMMIT"
                    if autocommit and _known_closed(raw):
                        # Seen lost by the driver (a database restart, for a
                        # pooled connection): nothing sent, run on a new one.
                        await raw.invalidate()
                        raise _ConnectionLost()
                    if options:
                        conn = await raw.execution_options(**options)
                    await conn.begin()
                    if autocommit and WRITE_OPTION in options:
                        # Each statement commits as it ends: its reply is the
                        # outcome, so a loss while it is in flight is ambiguous.
                        committing = True
                    else:
                        await self._limit_statements(conn, kind)
                    result = await work(conn)
                    committing = True
                    await conn.commit()
                    if WRITE_OPTION in options:
                        self.stats.writes += 1
                    return result
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError) or is_unavailable(exc):
                        if not raw.invalidated:
                            await raw.invalidate()
                    elif conn.in_transaction():
                        await conn.rollback()
                    raise
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            raise _unanswered(exc, committing, kind) from exc

    async def _limit_statements(self, conn: AsyncConnection, kind: Kind) -> None:
        """Bound this unit of work's statements when its kind's limit is not the
        session default (the read kind's)."""
        seconds = self.timeouts.statement(kind)
        if self.dialect == "postgresql":
            if seconds != self.timeouts.read:
                await conn.exec_driver_sql(postgresql_statement_limit(seconds))
        elif self.dialect == "mysql":
            info = conn.info
            if info.get(STATEMENT_LIMIT_INFO) != seconds:
                mariadb = bool(getattr(self.engine.dialect, "is_mariadb", False))
                await conn.exec_driver_sql(mysql_statement_limit(seconds, mariadb))
                info[STATEMENT_LIMIT_INFO] = seconds

    async def _run(
        self,
        work: Work[T],
        options: dict[str, Any],
        kind: Kind,
        delays: tuple[float, ...] | None = None,
    ) -> T:
        """``work`` in one transaction, run again on a fresh connection when the
        connection was lost before COMMIT (a bounded number of times)."""
        return await self._reconnecting(lambda: self._attempt(work, options, kind), delays)

    async def _reconnecting(
        self, attempt: Callable[[], Awaitable[T]], delays: tuple[float, ...] | None = None
    ) -> T:
        """``attempt`` (one unit of work), made again when it raised
        :class:`_ConnectionLost` (a bounded number of times)."""
        delays = delays or self.reconnect_delays
        for attempt_number, delay in enumerate(delays):
            if delay:
                await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            try:
                return await attempt()
            except _ConnectionLost as lost:
                cause = lost.__cause__
                if attempt_number == len(delays) - 1:
                    LOG.warning("database unavailable after %d attempts: %s",
                                attempt_number + 1, cause)
                    raise DatabaseUnavailable() from cause
                self.stats.reconnects += 1
                LOG.info("database connection lost before COMMIT, running the unit of "
                         "work again: %s", cause)
        raise AssertionError("unreachable")

    async def read(self, work: Work[T], *, kind: Kind = Kind.READ) -> T:
        """Run ``work`` in one read transaction (one consistent snapshot)."""
        return await self._run(work, self._read_options, kind)

    async def write(self, work: Work[T], *, kind: Kind = Kind.WRITE, keyed: bool = False) -> T:
        """Run ``work`` in its own serializable transaction, retrying it whole.

        ``keyed``: the unit of work's correctness rests on unique and foreign
        keys (whose violations are retried) and compare-and-swap alone, so it
        runs in READ COMMITTED on server databases: concurrent writers of
        distinct rows (creating providers) then never fail serialization.
        """
        options = self._committed_options if keyed else self._write_options
        return await self._retried(work, options, kind)

    async def _retried(self, work: Work[T], options: dict[str, Any], kind: Kind) -> T:
        """``work`` with these transaction options, retried whole on
        serialization failures and :class:`RowMoved` (then a 409)."""
        delay = 0.005
        for attempt in range(1, self.write_attempts + 1):
            try:
                return await self._run(work, options, kind)
            except (DBAPIError, RowMoved) as exc:
                if isinstance(exc, DBAPIError) and not is_serialization_failure(exc):
                    raise
                if attempt == self.write_attempts:
                    raise ConcurrentUpdate() from exc
                self.stats.serialization_retries += 1
                LOG.debug("serialization failure, retrying (attempt %d)", attempt)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.2)
        raise AssertionError("unreachable")

    async def claim(
        self,
        work: Work[T],
        *,
        exhausted: Callable[[], PlacementError],
        attempts: int | None = None,
    ) -> T:
        """A write at the claims' isolation; provider races retry it whole.

        No table lock: ``work`` locks the rows of the providers it claims
        against (in one order, so claims on the same providers queue on them and
        disjoint claims run in parallel); correctness comes from the generation
        compare-and-swap. ``exhausted`` builds the error answered when every
        attempt raced; ``attempts`` overrides the configured number of attempts.
        """
        tries = self.claim_attempts if attempts is None else max(attempts, 1)
        for attempt in range(tries):
            try:
                if self._claim_lock is None:
                    return await self._retried(work, self._committed_options, Kind.WRITE)
                async with self._claim_lock:
                    return await self._retried(work, self._committed_options, Kind.WRITE)
            except ProviderGenerationRace:
                self.stats.claim_retries += 1
                LOG.debug("provider generation moved (attempt %d); retrying claim", attempt + 1)
        LOG.warning("exceeded %d retries of a claim on provider generation conflicts", tries)
        raise exhausted()

    async def single_statement(self, work: Work[T]) -> T:
        """``work``, one statement that is its own transaction (autocommit):
        no BEGIN and no COMMIT round trip, nothing held past its reply. Run
        again on a fresh connection when the connection was lost before it was
        sent or the server said it ended the session; any other loss while it
        runs is a 503 (its outcome is unknown); other failures are the caller's.
        Server databases only."""
        return await self._run(work, self._autocommit_options, Kind.WRITE)

    async def single_rows(
        self, clause: Statement, params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of ``clause``, one statement run as ``single_statement``
        runs it (same reconnection, 503s and time limits); on asyncpg through
        the driver's own connection (``app/db/driver_statement.py``). What the
        database refused (nothing written) raises :class:`Refused`."""
        if self._driver is None:
            return await self.single_statement(lambda conn: _all_rows(conn, clause, params))
        return await self._driver_rows(self._driver, clause, params, write=True)

    async def single_read_rows(
        self, clause: Statement, params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of ``clause``, one read statement run as ``single_read`` runs
        it; on asyncpg through the driver's own connection, as ``single_rows``."""
        if self._driver is None:
            return await self.single_read(lambda conn: _all_rows(conn, clause, params))
        return await self._driver_rows(self._driver, clause, params, write=False)

    async def _driver_rows(
        self, driver: DriverStatements, clause: Statement, params: Mapping[str, Any], *,
        write: bool,
    ) -> Sequence[Sequence[Any]]:
        kind = Kind.WRITE if write else Kind.READ

        async def attempt() -> Sequence[Sequence[Any]]:
            try:
                rows = await driver.rows(clause, params)
            except ClosedBeforeSending as exc:
                raise _ConnectionLost() from exc
            except Refused:
                raise
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                # Autocommitted: a write lost in flight leaves the outcome unknown.
                raise _unanswered(exc, write, kind) from exc
            if write:
                self.stats.writes += 1
            return rows

        return await self._reconnecting(attempt)

    async def single_read(self, work: Work[T]) -> T:
        """``work``, one read statement run autocommitted (server databases): one
        round trip, no BEGIN, COMMIT or statement limit beyond the session's
        (the read kind's). Elsewhere (SQLite) an ordinary read."""
        if self.dialect == "sqlite":
            return await self.read(work)
        return await self._run(work, self._autocommit_read_options, Kind.READ)

    async def guarded_write(self, work: Work[T]) -> T:
        """A write whose every change is guarded by a provider generation
        compare-and-swap (inventories, provider traits): at the claims'
        isolation, since the swap already orders the writers of one provider and
        serializable isolation would only abort writers of others (on small
        tables PostgreSQL's predicate locks are pages, shared by every provider).
        A duplicate key is a concurrent writer of the same provider's rows (what
        serializable isolation reports as a serialization failure): retried, the
        work then finds the provider moved."""

        async def guarded(conn: AsyncConnection) -> T:
            try:
                return await work(conn)
            except IntegrityError as exc:
                raise RowMoved() from exc

        return await self._retried(guarded, self._committed_options, Kind.WRITE)

    async def probe_write(self) -> None:
        """The readiness check: a write transaction that writes (no row) and is
        rolled back. Fails on a database that answers reads but cannot write:
        a read-only SQLite file, a PostgreSQL standby, a read-only MySQL."""

        async def write_nothing(conn: AsyncConnection) -> None:
            await conn.execute(text("UPDATE traits SET name = name WHERE id < 0"))
            raise _ProbeDone

        try:
            # Once more on a fresh connection (a stale pooled one says nothing
            # about the database), but no waiting for a restart: report it.
            await self._run(write_nothing, self._committed_options, Kind.WRITE, (0.0, 0.0))
        except _ProbeDone:
            pass

    async def dispose(self) -> None:
        await self.engine.dispose()
