"""The per-worker candidates snapshot and its freshness bound.

``candidates_snapshot_max_age`` (seconds) bounds how stale an answer may be:
a request is answered from a snapshot whose check of the database *started*
at most that long before the request arrived. With 0 (the default) every
request waits for a check that started after it arrived, so it sees every
write committed before it, as a plain read would; the check is one
fingerprint row, and rows are read again only for the providers that changed.
A negative value turns the snapshot off (every request runs the SQL).

One check at a time per worker: requests that arrive while one runs wait for
the next and share it. Claims re-check capacity in their own transaction, so
a stale answer can cost a retry, never an over-allocation.

Whatever the bound, an answer also reflects every write this worker committed
before the request arrived (its claims, inventories...): the primary's count
of committed writes (``Database.stats.writes``) taken when a check starts must
have reached the count taken when the request arrived. So a scheduler is never
offered, by the worker that just took it, capacity it has already claimed.
"""

import asyncio
import time
import weakref

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories.candidates.snapshot import Snapshot, catch_up, refresh, still_current
from app.db.repositories.claims_in_flight import wait_for_claims
from app.services.claim_queue import provider_queue

# How long a candidates search waits for this worker's claims in flight
# (queued or running when it arrived), and then, on the PostgreSQL primary, its
# check for every worker's (claims_in_flight). Measured on the bench's schedule loop
# (16 schedulers, limit=10, --quick): 0.05 s for the running claims only gave
# 2.73 conflicts (409) per placement, 0.5 s for the queued ones too 2.34.
SETTLE_BOUND = 0.5


async def settle_claims(writer: Database) -> None:
    """Let the claims this worker is making now end (bounded by :data:`SETTLE_BOUND`)
    before a candidates search: the search then sees them committed instead of
    offering the capacity they are taking, which schedulers would claim in vain
    (a 409, then their next candidate). The answer is still that of the
    database as read; only the moment of the read moves. The wait holds no
    connection; later claims are not waited for."""
    await provider_queue(writer).settled(SETTLE_BOUND)


class SnapshotKeeper:
    """One database's snapshot in this worker."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.checked_at = float("-inf")  # monotonic start of the last completed check
        self.writes_seen = -1  # the local writes count when that check started
        self.checks = 0
        self._lock = asyncio.Lock()

    async def current(
        self, db: Database, max_age: float, local: Database | None = None
    ) -> Snapshot:
        """A snapshot fresh enough for a request arriving now. ``local`` is the
        database this worker writes to (``db`` unless reads go to a standby)."""
        writer = local or db
        arrived, writes = time.monotonic(), writer.stats.writes
        snapshot = self.snapshot
        if (snapshot is not None and arrived - self.checked_at < max_age
                and self.writes_seen >= writes):
            return snapshot
        async with self._lock:
            snapshot = self.snapshot
            # A check that started after this request arrived (while it waited) serves it.
            if (snapshot is not None and self.checked_at >= arrived - max_age
                    and self.writes_seen >= writes):
                return snapshot
            started, writes_then = time.monotonic(), writer.stats.writes

            one_statement = db.dialect == "postgresql"
            # Other workers' claims are seen in flight on the primary only.
            on_primary = one_statement and writer is db

            async def probe() -> Snapshot | None:
                if snapshot is None:
                    return None
                if one_statement:
                    if on_primary:
                        await wait_for_claims(db.single_read_rows, SETTLE_BOUND)
                    return await catch_up(db.single_read_rows, snapshot)
                return await db.single_read(lambda conn: still_current(conn, snapshot))

            async def check(conn: AsyncConnection) -> Snapshot:
                return await refresh(conn, self.snapshot)

            # Most checks find nothing changed: one autocommitted statement says
            # so; on PostgreSQL the same statement also reads the providers whose
            # rows moved (claims: with several workers, the others' claims move
            # the snapshot on nearly every check). Otherwise (and, elsewhere,
            # straight away when this worker wrote since the last check) the rows
            # are read in one REPEATABLE READ transaction (small statements: the
            # read kind's time limit, no extra round trip).
            unwritten = self.writes_seen >= writes_then or one_statement
            fresh = await probe() if snapshot is not None and unwritten else None
            current = fresh if fresh is not None else await db.read(check)
            self.snapshot, self.checked_at, self.writes_seen = current, started, writes_then
            self.checks += 1
            return current

    def invalidate(self) -> None:
        """The next request checks the database (this worker wrote)."""
        self.checked_at = float("-inf")


_KEEPERS: "weakref.WeakKeyDictionary[Database, SnapshotKeeper]" = weakref.WeakKeyDictionary()


def keeper_of(db: Database) -> SnapshotKeeper:
    keeper = _KEEPERS.get(db)
    if keeper is None:
        keeper = _KEEPERS[db] = SnapshotKeeper()
    return keeper


def invalidate_all() -> None:
    """Every snapshot of this worker is checked again on its next use."""
    for keeper in list(_KEEPERS.values()):
        keeper.invalidate()
