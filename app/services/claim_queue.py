"""Per worker, claims on the same provider queue here before taking a connection.

Claims on one provider are ordered by its row lock in the database; a claim
waiting there holds a pooled connection the whole time, so under many
concurrent claims on a few providers the waiters fill the pool and every other
request (candidates, reads) waits for a connection behind them. Queueing the
claims of this process on the provider in memory first leaves at most one of
them per provider in the database; the row lock still orders claims across
workers and replicas. Providers are queued on in sorted order (no deadlock
among multi-provider claims), and a provider's lock is dropped when nobody
holds or waits for it. Waiting here is bounded like waiting for a row lock
(``db_lock_timeout``): past it the claim is answered 503 with Retry-After, so a
queue stalled behind a database restart never holds clients unboundedly.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from weakref import WeakKeyDictionary

from app.db.database import Database
from app.exceptions import DatabaseUnavailable


class ProviderQueue:
    def __init__(self, wait_limit: float = 0.0) -> None:
        self.wait_limit = wait_limit  # seconds; 0: unbounded
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()
        # One future per claim in this queue (waiting or holding its providers),
        # done when it ends.
        self._in_flight: set[asyncio.Future[None]] = set()

    @asynccontextmanager
    async def hold(self, providers: Iterable[str]) -> AsyncIterator[None]:
        """Wait for every named provider (by uuid), in sorted order; hold them."""
        keys = sorted(set(providers))
        for key in keys:
            self._locks.setdefault(key, asyncio.Lock())
            self._users[key] += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.add(done)
        try:
            async with AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout(self.wait_limit or None):
                        for key in keys:
                            await stack.enter_async_context(self._locks[key])
                except TimeoutError:
                    raise DatabaseUnavailable() from None
                yield
        finally:
            self._in_flight.discard(done)
            done.set_result(None)
            for key in keys:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key]
                    del self._locks[key]

    async def settled(self, bound: float) -> None:
        """Wait, at most ``bound`` seconds, for the claims queued or running now
        to end (not for those that come later)."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=bound)


# One queue per Database (an app's lifetime; tests run several apps and loops).
_QUEUES: "WeakKeyDictionary[Database, ProviderQueue]" = WeakKeyDictionary()


def provider_queue(db: Database) -> ProviderQueue:
    queue = _QUEUES.get(db)
    if queue is None:
        queue = _QUEUES[db] = ProviderQueue(db.timeouts.lock)
    return queue
