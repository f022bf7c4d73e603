"""Claims lock their providers' rows, not a table (PostgreSQL, MySQL/MariaDB).

A claim transaction held open on provider A (its row lock taken, as every
claim takes it first) must not delay a claim on provider B, while a claim on A
waits for it and, once it ends, reads and writes what A holds then. SQLite has
one writer: there is nothing parallel to show (``make test-pg`` / ``make
test-mysql`` run these).
"""

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.exceptions import AllocationsRaced
from app.services import claims
from app.services.claims import ConsumerClaim
from tests.allocation_helpers import body
from tests.api_helpers import make_provider, new_uuid, usages
from tests.databases import TEST_SERVER_URL, is_server

pytestmark = pytest.mark.skipif(
    not is_server(TEST_SERVER_URL), reason="SQLite has one writer: no parallel claims")

INVENTORY = {"VCPU": {"total": 4, "max_unit": 4}}


async def _hold_claim_lock(db: Database, provider: str, held: asyncio.Event,
                           release: asyncio.Event) -> None:
    """A claim transaction that locks ``provider`` and waits for ``release``."""
    claim = ConsumerClaim(new_uuid(), "p1", "u1", {provider: {"VCPU": 1}})

    async def work(conn: AsyncConnection) -> None:
        await claims.lock_providers(conn, [claim])
        held.set()
        await release.wait()

    await db.claim(work, exhausted=AllocationsRaced)


async def _put(client: httpx.AsyncClient, provider: str, vcpu: int) -> httpx.Response:
    return await client.put(f"/allocations/{new_uuid()}", json=body({provider: {"VCPU": vcpu}}))


async def test_disjoint_claims_do_not_wait(app: FastAPI, client: httpx.AsyncClient) -> None:
    rp_a = await make_provider(client, INVENTORY)
    rp_b = await make_provider(client, INVENTORY)
    db: Database = app.state.database
    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold_claim_lock(db, rp_a, held, release))
    try:
        await asyncio.wait_for(held.wait(), 10)
        started = time.monotonic()
        # Another provider: answered while A's claim is still open.
        response = await asyncio.wait_for(_put(client, rp_b, 3), 10)
        assert response.status_code == 204, response.text
        assert time.monotonic() - started < 5
        # The same provider: queued behind the open claim.
        same = asyncio.create_task(_put(client, rp_a, 3))
        await asyncio.sleep(1.0)
        assert not same.done()
    finally:
        release.set()
        await holder
    response = await asyncio.wait_for(same, 10)
    assert response.status_code == 204, response.text
    # The queued claim read A's usage after the lock: a second one no longer fits.
    response = await _put(client, rp_a, 2)
    assert response.status_code == 409
    assert await usages(client, rp_a) == {"VCPU": 3}
    assert await usages(client, rp_b) == {"VCPU": 3}


async def test_same_provider_claims_never_overcommit(client: httpx.AsyncClient) -> None:
    """Many concurrent claims on one provider: exactly its capacity is granted."""
    rp = await make_provider(client, {"VCPU": {"total": 6, "max_unit": 1}})
    answers = await asyncio.gather(*(_put(client, rp, 1) for _ in range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [204] * 6 + [409] * 14, [a.text for a in answers if a.status_code >= 500]
    assert await usages(client, rp) == {"VCPU": 6}
