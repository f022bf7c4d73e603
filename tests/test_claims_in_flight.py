"""PostgreSQL: a candidates check waits for the claims in flight on the primary,
whichever worker makes them, and never the other way round.

Two apps on one database stand for two workers. A claim is held in flight by
a row lock taken from outside (as a claim on the same provider committing
slowly would hold it); the check of the other worker must wait for it to
commit and answer without the capacity it took, but only for a bounded time.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.services.candidates.freshness import SETTLE_BOUND
from tests.allocation_helpers import body
from tests.api_helpers import make_provider, new_uuid
from tests.two_workers import Pair, engine_of, two_workers

_MARKS = text("""
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted AND classid = 1886151011
""")


@pytest.fixture
async def workers(postgresql_url: str) -> AsyncIterator[tuple[Pair, Pair]]:
    async with two_workers(postgresql_url) as pair:
        yield pair


async def _count(client: httpx.AsyncClient, resources: str) -> int:
    response = await client.get("/allocation_candidates", params={"resources": resources})
    assert response.status_code == 200, response.text
    return len(response.json()["allocation_requests"])


async def _until_marked(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(200):
            if (await conn.execute(_MARKS)).scalar_one() == 1:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the claim never marked itself in flight")


@asynccontextmanager
async def _claim_held_in_flight(
    engine: AsyncEngine, client: httpx.AsyncClient, rp: str
) -> AsyncIterator[asyncio.Task[httpx.Response]]:
    """A claim of ``client``'s on ``rp``, marked and then held on the provider's
    row lock (taken here, from outside) until the block ends."""
    async with engine.connect() as holder:
        await holder.begin()
        await holder.execute(
            text("SELECT id FROM resource_providers WHERE uuid = :rp FOR UPDATE"), {"rp": rp})
        claim = asyncio.create_task(
            client.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 4}})))
        await _until_marked(engine)
        yield claim
        await holder.rollback()


async def test_a_check_waits_for_another_workers_claim_in_flight(
    workers: tuple[Pair, Pair],
) -> None:
    (one, first), (_, second) = workers
    engine = engine_of(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    assert await _count(first, "VCPU:4") == 1  # the snapshot is loaded
    # The other worker's claim: marked, then waiting on the row lock.
    async with _claim_held_in_flight(engine, second, rp) as claim:
        search = asyncio.create_task(_count(first, "VCPU:4"))
        await asyncio.sleep(0.2)
        assert not search.done()  # waiting for the claim, not answering without it
    assert (await claim).status_code == 204
    assert await search == 0  # it saw the claim commit


async def test_the_wait_for_claims_in_flight_is_bounded(workers: tuple[Pair, Pair]) -> None:
    (one, first), (_, second) = workers
    engine = engine_of(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    assert await _count(first, "VCPU:4") == 1
    async with _claim_held_in_flight(engine, second, rp) as claim:
        started = time.monotonic()
        # Stuck claim: the search answers anyway once the bound has passed.
        assert await _count(first, "VCPU:4") == 1
        waited = time.monotonic() - started
    assert (await claim).status_code == 204
    assert SETTLE_BOUND * 0.8 <= waited < SETTLE_BOUND + 2


async def test_a_claim_never_waits_for_a_check(workers: tuple[Pair, Pair]) -> None:
    (one, first), (_, second) = workers
    engine = engine_of(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    async with engine.connect() as holder:
        await holder.begin()
        # As a check waiting (or holding) the exclusive form would.
        await holder.execute(text("SELECT pg_advisory_xact_lock(1886151011, 1)"))
        response = await asyncio.wait_for(
            second.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 4}})), 5)
        assert response.status_code == 204, response.text
        await holder.rollback()
    assert await _count(first, "VCPU:1") == 0
