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

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.services.candidates.freshness import SETTLE_BOUND
from app.settings import Settings
from tests.allocation_helpers import body
from tests.api_helpers import ADMIN_LATEST, asgi_client, make_provider, new_uuid, running_app

Pair = tuple[FastAPI, httpx.AsyncClient]

_MARKS = text("""
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted AND classid = 1886151011
""")


@pytest.fixture
async def workers(postgresql_url: str) -> AsyncIterator[tuple[Pair, Pair]]:
    settings = Settings(database_url=postgresql_url, auth_strategy="noauth2",
                        candidates_snapshot_max_age=0.0)
    async with running_app(settings) as one, asgi_client(one, ADMIN_LATEST) as first, \
            running_app(settings) as two, asgi_client(two, ADMIN_LATEST) as second:
        yield (one, first), (two, second)


def _engine(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.database.engine
    return engine


async def _count(client: httpx.AsyncClient, resources: str) -> int:
    response = await client.get("/allocation_candidates", params={"resources": resources})
    assert response.status_code == 200, response.text
    return len(response.json()["allocation_requests"])


async def _lock_row(conn: AsyncConnection, rp: str) -> None:
    await conn.execute(text("SELECT id FROM resource_providers WHERE uuid = :rp FOR UPDATE"),
                       {"rp": rp})


async def _until_marked(engine: AsyncEngine, count: int) -> None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(200):
            if (await conn.execute(_MARKS)).scalar_one() == count:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"never {count} claim(s) marked in flight")


async def test_a_check_waits_for_another_workers_claim_in_flight(
    workers: tuple[Pair, Pair],
) -> None:
    (one, first), (_, second) = workers
    engine = _engine(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    assert await _count(first, "VCPU:4") == 1  # the snapshot is loaded
    async with engine.connect() as holder:
        await holder.begin()
        await _lock_row(holder, rp)
        # The other worker's claim: marked, then waiting on the row lock.
        claim = asyncio.create_task(
            second.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 4}})))
        await _until_marked(engine, 1)
        search = asyncio.create_task(_count(first, "VCPU:4"))
        await asyncio.sleep(0.2)
        assert not search.done()  # waiting for the claim, not answering without it
        await holder.rollback()
    assert (await claim).status_code == 204
    assert await search == 0  # it saw the claim commit


async def test_the_wait_for_claims_in_flight_is_bounded(workers: tuple[Pair, Pair]) -> None:
    (one, first), (_, second) = workers
    engine = _engine(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    assert await _count(first, "VCPU:4") == 1
    async with engine.connect() as holder:
        await holder.begin()
        await _lock_row(holder, rp)
        claim = asyncio.create_task(
            second.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": 4}})))
        await _until_marked(engine, 1)
        started = time.monotonic()
        # Stuck claim: the search answers anyway once the bound has passed.
        assert await _count(first, "VCPU:4") == 1
        waited = time.monotonic() - started
        await holder.rollback()
    assert (await claim).status_code == 204
    assert SETTLE_BOUND * 0.8 <= waited < SETTLE_BOUND + 2


async def test_a_claim_never_waits_for_a_check(workers: tuple[Pair, Pair]) -> None:
    (one, first), (_, second) = workers
    engine = _engine(one)
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
