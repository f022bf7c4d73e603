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

A lost connection or a database that cannot answer now (a Galera node outside
the primary component) is :class:`~app.exceptions.DatabaseUnavailable`, a 503.

The retry counters live here; the metrics read them.
"""

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.engine import WRITE_OPTION, is_serialization_failure, is_unavailable
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


@dataclass
class DatabaseStats:
    """Process-local counters (exported as metrics)."""

    serialization_retries: int = 0
    claim_retries: int = 0


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        write_attempts: int = 20,
        claim_attempts: int = 10,
    ) -> None:
        self.engine = engine
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
        # Claims run at READ COMMITTED on server databases: a claim first locks
        # the rows of the providers it names (claim_reads.lock_providers), so
        # every later statement reads what the claims before it committed; claims
        # on disjoint providers never wait for each other.
        self._claim_options = dict(self._write_options)
        if self.dialect != "sqlite":
            self._claim_options["isolation_level"] = "READ COMMITTED"

    @asynccontextmanager
    async def _transaction(self, options: dict[str, Any]) -> AsyncIterator[AsyncConnection]:
        """A connection in a fresh transaction; an unreachable database is a 503.

        A connection that failed so is invalidated, not returned to the pool:
        the next unit of work connects anew (and so recovers by itself once the
        database answers again).
        """
        try:
            async with self.engine.connect() as raw:
                try:
                    conn = await raw.execution_options(**options) if options else raw
                    async with conn.begin():
                        yield conn
                except Exception as exc:
                    if is_unavailable(exc) and not raw.invalidated:
                        await raw.invalidate()
                    raise
        except Exception as exc:
            if is_unavailable(exc):
                LOG.warning("database unavailable: %s", exc)
                raise DatabaseUnavailable() from exc
            raise

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` in one read transaction (one consistent snapshot)."""
        async with self._transaction(self._read_options) as conn:
            return await work(conn)

    async def write(self, work: Work[T], *, options: dict[str, Any] | None = None) -> T:
        """Run ``work`` in its own serializable transaction, retrying it whole
        (``options``: other transaction options, the claims')."""
        delay = 0.005
        for attempt in range(1, self.write_attempts + 1):
            try:
                async with self._transaction(options or self._write_options) as conn:
                    return await work(conn)
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
                    return await self.write(work, options=self._claim_options)
                async with self._claim_lock:
                    return await self.write(work, options=self._claim_options)
            except ProviderGenerationRace:
                self.stats.claim_retries += 1
                LOG.debug("provider generation moved (attempt %d); retrying claim", attempt + 1)
        LOG.warning("exceeded %d retries of a claim on provider generation conflicts", tries)
        raise exhausted()

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

        return await self.write(guarded, options=self._claim_options)

    async def ping(self) -> None:
        """One trivial round trip (the readiness check)."""

        async def select_one(conn: AsyncConnection) -> None:
            await conn.execute(text("SELECT 1"))

        await self.read(select_one)

    async def dispose(self) -> None:
        await self.engine.dispose()
