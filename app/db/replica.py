"""Reads that tolerate replication lag, served by a read standby.

A :class:`ReadReplica` is a :class:`~app.db.database.Database` whose reads
(``read``, ``single_read``, ``single_read_rows``) run on a standby (a
PostgreSQL hot standby, another Galera node) and whose ``write`` and ``claim``
run on the primary, so a handler given one can never write to a standby. The
routers hand it only to the reads that may lag (lists, allocation candidates,
usages); everything a claim or a client's generation compare-and-swap depends
on reads the primary.

An operator adds a standby for capacity, not as a new way to fail, so the
standby failing degrades to the primary rather than to errors:

* unreachable (refused, lost, a Galera node outside the primary component):
  the read runs on the primary, and the standby is left alone for
  ``retry_interval`` seconds before it is tried again;
* a query the standby cancelled to replay WAL (a recovery conflict, SQLSTATE
  40001/40P01): that read runs again on the primary;
* further behind than ``max_lag`` seconds (PostgreSQL; checked at most once a
  second per process): reads go to the primary until it catches up.

If the primary fails too, the answer is the primary's: a 503.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.database import Database, Work
from app.db.driver_statement import Refused, Statement
from app.db.engine import SERIALIZATION_FAILURES, is_serialization_failure, make_engine
from app.db.timeouts import Kind
from app.exceptions import DatabaseUnavailable, PlacementError

LOG = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds between two looks at a PostgreSQL standby's replay lag (per process).
LAG_CHECK_INTERVAL = 1.0
# Replay lag of a PostgreSQL standby, in seconds: 0 when it has replayed all it
# received (an idle primary leaves the last replay timestamp behind); not in
# recovery (promoted, or the URL names a primary) is no lag.
PG_LAG = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()),"
    " 0) END"
)


class ReadReplica(Database):
    """Lag-tolerant reads on a standby, falling back to ``primary``."""

    def __init__(
        self,
        engine: AsyncEngine,
        primary: Database,
        *,
        max_lag: float | None = None,
        retry_interval: float = 30.0,
    ) -> None:
        super().__init__(
            engine,
            write_attempts=primary.write_attempts,
            claim_attempts=primary.claim_attempts,
            timeouts=primary.timeouts,
        )
        # A standby restarting is waited for as long as the primary would be.
        self.reconnect_delays = primary.reconnect_delays
        self.primary = primary
        self.max_lag = max_lag
        self.retry_interval = retry_interval
        self.fallbacks = 0
        self._down_until = 0.0
        self._lag_checked_at = -LAG_CHECK_INTERVAL
        self._lagging = False
        self._lag_lock = asyncio.Lock()

    async def read(self, work: Work[T], *, kind: Kind = Kind.READ) -> T:
        return await self._on_standby(
            lambda: super(ReadReplica, self).read(work, kind=kind),
            lambda: self.primary.read(work, kind=kind))

    async def single_read(self, work: Work[T]) -> T:
        return await self._on_standby(
            lambda: super(ReadReplica, self).single_read(work),
            lambda: self.primary.single_read(work))

    async def single_read_rows(
        self, clause: Statement, params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        return await self._on_standby(
            lambda: super(ReadReplica, self).single_read_rows(clause, params),
            lambda: self.primary.single_read_rows(clause, params))

    async def _on_standby(
        self, standby: Callable[[], Awaitable[T]], primary: Callable[[], Awaitable[T]]
    ) -> T:
        """A read on the standby, or on the primary when the standby is down,
        lags past the bound or cancelled the read."""
        if not await self._usable():
            return await primary()
        try:
            return await standby()
        except DatabaseUnavailable:
            LOG.warning("read standby unavailable: reading from the primary for %.0f s",
                        self.retry_interval)
            self._down_until = time.monotonic() + self.retry_interval
        except (DBAPIError, Refused) as exc:
            # A recovery conflict: 40001/40P01, through SQLAlchemy or the driver.
            if not (is_serialization_failure(exc) if isinstance(exc, DBAPIError)
                    else exc.sqlstate in SERIALIZATION_FAILURES):
                raise
            LOG.info("read standby cancelled a query (recovery conflict): reading the primary")
        self.fallbacks += 1
        return await primary()

    async def write(self, work: Work[T], *, kind: Kind = Kind.WRITE, keyed: bool = False) -> T:
        return await self.primary.write(work, kind=kind, keyed=keyed)

    async def single_statement(self, work: Work[T]) -> T:
        return await self.primary.single_statement(work)

    async def claim(
        self,
        work: Work[T],
        *,
        exhausted: Callable[[], PlacementError],
        attempts: int | None = None,
    ) -> T:
        return await self.primary.claim(work, exhausted=exhausted, attempts=attempts)

    async def _usable(self) -> bool:
        """Not known to be down, and (with a bound) not known to lag past it."""
        now = time.monotonic()
        if now < self._down_until:
            return False
        if self.max_lag is None or self.dialect != "postgresql":
            return True
        if now - self._lag_checked_at >= LAG_CHECK_INTERVAL:
            async with self._lag_lock:  # one look per interval, however many requests
                if time.monotonic() - self._lag_checked_at >= LAG_CHECK_INTERVAL:
                    await self._check_lag()
        return not self._lagging and time.monotonic() >= self._down_until

    async def _check_lag(self) -> None:
        async def lag(conn: AsyncConnection) -> float:
            return float((await conn.execute(PG_LAG)).scalar_one())

        try:
            seconds = await super().read(lag)
        except DatabaseUnavailable:
            LOG.warning("read standby unavailable: reading from the primary for %.0f s",
                        self.retry_interval)
            self._down_until = time.monotonic() + self.retry_interval
            seconds = 0.0
        except DBAPIError as exc:
            # Cannot tell (a cancelled query, a server that is no standby of
            # ours): count it as lagging until the next look.
            LOG.warning("cannot read the standby's replay lag: %s", exc.orig or exc)
            seconds = float("inf")
        lagging = seconds > (self.max_lag or 0.0)
        if lagging != self._lagging:
            LOG.warning("read standby %s (replay lag %.1f s, bound %.1f s)",
                        "lags: reading from the primary" if lagging else "caught up",
                        seconds, self.max_lag or 0.0)
        self._lagging = lagging
        self._lag_checked_at = time.monotonic()


def open_read_database(
    url: str | None,
    primary: Database,
    *,
    pool_size: int,
    max_overflow: int,
    max_lag: float | None,
    retry_interval: float,
) -> Database:
    """The database lag-tolerant reads use: a standby's, or else the primary."""
    if not url:
        return primary
    engine = make_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, timeouts=primary.timeouts)
    return ReadReplica(engine, primary, max_lag=max_lag, retry_interval=retry_interval)
