"""What the candidates snapshot's freshness check must notice, and what it may skip.

* A worker's own committed writes: seen by its next answer whatever
  ``candidates_snapshot_max_age`` allows.
* Allocations deleted by a writer that bumps no generation and that this
  worker does not know of (the reference server sharing the database does
  exactly this): seen at ``max_age = 0``, through the allocation count.
* On PostgreSQL, when nothing was committed since the last check, the check
  reads no table (the transaction snapshot is compared first).

The services run these checks; the first two tests would fail if a worker's
writes or a generation-less deletion were missed.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.repositories.candidates import snapshot_load as load
from app.db.repositories.candidates.snapshot import refresh
from app.settings import Settings
from tests.allocation_helpers import body
from tests.api_helpers import ADMIN_LATEST, asgi_client, make_provider, new_uuid, running_app

QUERY = {"resources": "VCPU:4"}


async def _app(
    database_url: str, max_age: float
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings(database_url=database_url, auth_strategy="noauth2",
                        candidates_snapshot_max_age=max_age)
    async with running_app(settings) as app, asgi_client(app, ADMIN_LATEST) as client:
        yield app, client


@pytest.fixture
async def patient(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app whose snapshot may be an hour old."""
    async for pair in _app(database_url, 3600.0):
        yield pair


@pytest.fixture
async def strict(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async for pair in _app(database_url, 0.0):
        yield pair


async def _candidates(client: httpx.AsyncClient) -> int:
    response = await client.get("/allocation_candidates", params=QUERY)
    assert response.status_code == 200, response.text
    return len(response.json()["allocation_requests"])


async def _claim_all(client: httpx.AsyncClient, rp: str) -> str:
    consumer = new_uuid()
    response = await client.put(f"/allocations/{consumer}", json=body({rp: {"VCPU": 4}}))
    assert response.status_code == 204, response.text
    return consumer


async def test_own_claim_is_seen_whatever_the_bound(
    patient: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = patient
    rp = await make_provider(client, {"VCPU": {"total": 4}})
    assert await _candidates(client) == 1  # the snapshot is loaded now
    await _claim_all(client, rp)
    assert await _candidates(client) == 0  # not an hour-old answer
    response = await client.put(f"/resource_providers/{rp}/inventories/VCPU", json={
        "resource_provider_generation": 2, "total": 8})
    assert response.status_code == 200, response.text
    assert await _candidates(client) == 1  # more capacity, seen at once too


async def test_deletion_that_bumps_nothing_is_seen(
    strict: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = strict
    rp = await make_provider(client, {"VCPU": {"total": 4}})
    await _claim_all(client, rp)
    assert await _candidates(client) == 0
    # As another server would: no generation bump, nothing this worker counts.
    engine: AsyncEngine = app.state.database.engine
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM allocations"))
    assert await _candidates(client) == 1


async def test_deletion_rereads_only_the_providers_it_touched(
    strict: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """A generation-less deletion (and a membership set below 1.19) makes the
    refresh read again the rows of the providers it touched, not every one."""
    app, client = strict
    engine: AsyncEngine = app.state.database.engine
    # Five providers: one in five moved is under the share read again whole.
    touched, other, *rest = [await make_provider(client, {"VCPU": {"total": 4}})
                             for _ in range(5)]
    for rp in (touched, other, *rest):
        await _claim_all(client, rp)
    async with engine.connect() as conn:
        first = await refresh(conn, None)
        await conn.rollback()
    ids = first.provider_ids
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM allocations WHERE resource_provider_id = :id"),
                           {"id": ids[touched]})
    async with engine.connect() as conn:
        second = await refresh(conn, first)
        await conn.rollback()
    assert second.usages.get(ids[touched]) is None  # the deletion is seen...
    assert second.usages[ids[other]] == first.usages[ids[other]]
    # ... and the other provider's entries were kept, not read again.
    assert second.inventories[ids[other]] is first.inventories[ids[other]]
    assert second.usages[ids[other]] is first.usages[ids[other]]
    assert second.marks == second.fingerprint[load.MARKS_PART]
    assert second.provider_sums == second.fingerprint[:5]
    response = await client.put(f"/resource_providers/{touched}/aggregates",
                                json=[new_uuid()],
                                headers={"openstack-api-version": "placement 1.18"})
    assert response.status_code == 200, response.text
    async with engine.connect() as conn:
        third = await refresh(conn, second)
        await conn.rollback()
    assert len(third.aggregates[ids[touched]]) == 1
    assert third.inventories[ids[other]] is first.inventories[ids[other]]


async def test_nothing_committed_reads_no_table(
    strict: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = strict
    engine: AsyncEngine = app.state.database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the transaction snapshot is PostgreSQL's")
    rp = await make_provider(client, {"VCPU": {"total": 4}})
    await _claim_all(client, rp)
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    # Two checks in one REPEATABLE READ transaction see the same committed state,
    # whatever else the (shared) cluster commits meanwhile.
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            event.listen(engine.sync_engine, "before_cursor_execute", record)
            try:
                first = await refresh(conn, None)
                assert any("FROM allocations" in statement for statement in seen)
                seen.clear()
                assert await refresh(conn, first) is first
                # one statement, the probe, which then scans no table (see
                # test_probe_of_an_unchanged_version_scans_no_table)
                assert len(seen) == 1, seen
                assert "pg_current_snapshot()" in seen[0]
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", record)


def _scans(plan: dict[str, Any]) -> list[tuple[str, int]]:
    """(table, times its scan ran) of every scan in an EXPLAIN ANALYZE plan."""
    found = [(plan["Relation Name"], plan["Actual Loops"])] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


async def test_probe_of_an_unchanged_version_scans_no_table(
    strict: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """The probe's fingerprint (a count of every allocation) is skipped inside
    the statement when the database version is the one passed."""
    app, client = strict
    engine: AsyncEngine = app.state.database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the transaction snapshot is PostgreSQL's")
    rp = await make_provider(client, {"VCPU": {"total": 4}})
    await _claim_all(client, rp)
    statement = load._probe_statement()
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            version, fingerprint = await load.probe(conn, None)
            assert fingerprint is not None
            assert fingerprint[load.MARKS_PART][0] == 1  # one allocation
            assert await load.probe(conn, version) == (version, None)
            for last, ran in ((version, 0), ("other", 1)):
                sql = statement.params(last=last).compile(
                    engine.sync_engine, compile_kwargs={"literal_binds": True})
                plan = (await conn.execute(
                    text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))).scalar_one()[0]["Plan"]
                scans = _scans(plan)
                assert {table for table, _ in scans} >= {"allocations", "resource_providers"}
                assert all(loops == ran for _, loops in scans), (last, scans)


async def test_search_waits_for_the_claims_in_flight(
    strict: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """A search arriving while this worker's claim waits on its provider's row
    lock answers after the claim, without the capacity it took."""
    app, client = strict
    engine: AsyncEngine = app.state.database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("watches PostgreSQL's lock waits")
    rp = await make_provider(client, {"VCPU": {"total": 4}})
    assert await _candidates(client) == 1
    async with engine.connect() as locker, engine.connect() as watcher:
        async with locker.begin():
            await locker.execute(text("SELECT id FROM resource_providers FOR UPDATE"))
            claim = asyncio.create_task(_claim_all(client, rp))
            for _ in range(100):  # until the claim waits for the lock
                waiting = await watcher.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"))
                await watcher.rollback()
                if waiting:
                    break
                await asyncio.sleep(0.05)
            search = asyncio.create_task(_candidates(client))
            await asyncio.sleep(0.1)
            assert not search.done()  # it waits for the claim
        await claim
        assert await search == 0
