"""PostgreSQL: the snapshot check that also catches up in one statement.

Two apps on one database stand for two workers: each one's claims move the
other's snapshot. The catch-up statement must give the same snapshot a full
refresh would, cost one statement per check, and give way to the full
refresh for what the changed rows cannot account for (a provider gone, a
generation-less deletion, a new name).
"""

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.database import Database
from app.db.repositories.candidates import snapshot_catch_up
from app.db.repositories.candidates.snapshot import Snapshot, catch_up, refresh
from tests.allocation_helpers import body
from tests.api_helpers import make_provider, new_uuid
from tests.sent_statements import sent_through_asyncpg, sent_through_sqlalchemy
from tests.two_workers import Pair, engine_of, two_workers


@pytest.fixture
async def workers(postgresql_url: str) -> AsyncIterator[tuple[Pair, Pair]]:
    async with two_workers(postgresql_url) as pair:
        yield pair


async def _count(client: httpx.AsyncClient, resources: str = "VCPU:1") -> int:
    response = await client.get("/allocation_candidates", params={"resources": resources})
    assert response.status_code == 200, response.text
    return len(response.json()["allocation_requests"])


async def _claim(client: httpx.AsyncClient, rp: str, vcpu: int) -> None:
    response = await client.put(f"/allocations/{new_uuid()}", json=body({rp: {"VCPU": vcpu}}))
    assert response.status_code == 204, response.text


async def _full(engine: AsyncEngine) -> Snapshot:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return await refresh(conn, None)


async def _caught_up(engine: AsyncEngine, old: Snapshot) -> Snapshot | None:
    # As a worker runs it: one autocommitted statement on the driver's connection.
    return await catch_up(Database(engine).single_read_rows, old)


def _state(snap: Snapshot) -> tuple[Any, ...]:
    index = snap.index
    return (
        snap.fingerprint, snap.providers, snap.provider_ids, snap.inventories, snap.usages,
        snap.allocation_marks, snap.traits, snap.aggregates, snap.marks, snap.max_provider_id,
        snap.provider_sums,
        {rc: (c.roots, c.providers) for rc, c in index.by_class.items()}, index.by_trait,
        index.by_aggregate, index.trees, index.sharing,
    )


async def test_catch_up_gives_what_a_full_refresh_reads(workers: tuple[Pair, Pair]) -> None:
    (one, first), (_, second) = workers
    engine = engine_of(one)
    rp = await make_provider(first, {"VCPU": {"total": 8}})
    aggregate = new_uuid()
    response = await first.put(f"/resource_providers/{rp}/aggregates", json={
        "resource_provider_generation": 1, "aggregates": [aggregate]})
    assert response.status_code == 200, response.text
    await _claim(first, rp, 2)
    old = await _full(engine)
    # The other worker claims, changes an inventory, adds a provider with a trait
    # and a known aggregate (1.19+: bumps the generation).
    await _claim(second, rp, 3)
    response = await second.put(f"/resource_providers/{rp}/inventories/VCPU", json={
        "resource_provider_generation": 4, "total": 16})
    assert response.status_code == 200, response.text
    other = await make_provider(second, {"VCPU": {"total": 4}, "DISK_GB": {"total": 10}})
    response = await second.put(f"/resource_providers/{other}/traits", json={
        "resource_provider_generation": 1, "traits": ["HW_CPU_X86_AVX2"]})
    assert response.status_code == 200, response.text
    response = await second.put(f"/resource_providers/{other}/aggregates", json={
        "resource_provider_generation": 2, "aggregates": [aggregate]})
    assert response.status_code == 200, response.text
    published = copy.deepcopy(_state(old))
    caught = await _caught_up(engine, old)
    assert caught is not None
    assert caught is not old
    assert _state(caught) == _state(await _full(engine))
    # The version before is untouched (searches may still read it)...
    assert _state(old) == published
    # ... and a claim elsewhere copies only the maps it changes.
    await _claim(second, other, 1)
    claimed = await _caught_up(engine, caught)
    assert claimed is not None
    assert claimed.usages is not caught.usages
    assert claimed.inventories is caught.inventories
    assert claimed.traits is caught.traits
    assert claimed.aggregates is caught.aggregates
    assert claimed.provider_ids is caught.provider_ids
    assert _state(claimed) == _state(await _full(engine))
    # Unchanged since: the same object back.
    assert await _caught_up(engine, claimed) is claimed


async def test_another_workers_claim_costs_one_statement(
    workers: tuple[Pair, Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    (one, first), (_, second) = workers
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    assert await _count(first, "VCPU:4") == 1  # the snapshot is loaded
    await _claim(second, rp, 4)
    through_sqlalchemy = sent_through_sqlalchemy(one)
    seen = sent_through_asyncpg(monkeypatch)
    assert await _count(first, "VCPU:4") == 0  # the other worker's claim is seen
    # The wait for claims in flight (none), then the one catch-up statement, both
    # on the driver's own connection (no BEGIN, no COMMIT).
    assert through_sqlalchemy == []
    assert len(seen) == 2, seen
    assert "pg_advisory_xact_lock" in seen[0]
    assert "pg_current_snapshot()" in seen[1]


async def test_what_the_changed_rows_miss_falls_back_to_the_full_refresh(
    workers: tuple[Pair, Pair],
) -> None:
    (one, first), (two, second) = workers
    engine = engine_of(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    gone = await make_provider(first, {"VCPU": {"total": 4}})
    await _claim(first, rp, 4)
    old = await _full(engine)
    assert await _count(first, "VCPU:4") == 1
    # A provider deleted: no row of it left to read.
    response = await second.delete(f"/resource_providers/{gone}")
    assert response.status_code == 204, response.text
    assert await _caught_up(engine, old) is None
    assert await _count(first, "VCPU:4") == 0
    async with engine.connect() as conn:  # the refresh keeps its sums without the gone one
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            refreshed = await refresh(conn, old)
    assert refreshed.provider_sums == refreshed.fingerprint[:5]
    assert _state(refreshed) == _state(await _full(engine))
    # Allocations deleted as another server would: no generation bumped.
    old = await _full(engine)
    async with engine_of(two).begin() as conn:
        await conn.execute(text("DELETE FROM allocations"))
    assert await _caught_up(engine, old) is None
    assert await _count(first, "VCPU:4") == 1
    # A new custom class: the names moved.
    old = await _full(engine)
    response = await second.put("/resource_classes/CUSTOM_H1",
                                headers={"openstack-api-version": "placement 1.7"})
    assert response.status_code == 201, response.text
    assert await _caught_up(engine, old) is None


def _scans(plan: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(table, times its scan ran, rows it returned) of every scan in an EXPLAIN ANALYZE plan."""
    found = ([(plan["Relation Name"], plan["Actual Loops"], plan["Actual Rows"])]
             if "Relation Name" in plan else [])
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


async def test_an_unchanged_version_reads_nothing_and_a_changed_one_reads_only_the_written(
    workers: tuple[Pair, Pair],
) -> None:
    """Nothing but the version is read when it is the last one's; otherwise only
    the providers written since are returned (found by their row versions, with
    nothing sent but the last snapshot's text)."""
    (one, first), (_, second) = workers
    engine = engine_of(one)
    providers = [await make_provider(first, {"VCPU": {"total": 4}}) for _ in range(3)]
    old = await _full(engine)
    assert old.version is not None
    await _claim(second, providers[1], 1)
    statement = snapshot_catch_up._statement()
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            now = await conn.scalar(text("SELECT pg_current_snapshot()::text"))
            for last, ran in ((now, 0), (old.version, 1)):
                sql = statement.params(last=last).compile(
                    engine.sync_engine, compile_kwargs={"literal_binds": True})
                plan = (await conn.execute(
                    text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))).scalar_one()[0]["Plan"]
                scans = _scans(plan)
                assert "resource_providers" in {table for table, _, _ in scans}
                assert all(loops <= ran for _, loops, _ in scans), (last, scans)
                assert ran or all(loops == 0 for _, loops, _ in scans), scans
    read = await snapshot_catch_up.catch_up(Database(engine).single_read_rows, old.version)
    assert [row[1] for row in read.providers] == [providers[1]]


async def test_a_write_under_a_savepoint_is_never_missed(workers: tuple[Pair, Pair]) -> None:
    """A row written in a subtransaction carries an id the snapshot's text does
    not list: the catch-up either reads it or gives way to the full refresh,
    never an answer without the write."""
    (one, first), (two, _) = workers
    engine = engine_of(one)
    rp = await make_provider(first, {"VCPU": {"total": 4}})
    async with engine_of(two).connect() as writer:
        await writer.begin()
        await writer.execute(text("SELECT txid_current()"))  # the top transaction's id
        await writer.begin_nested()
        # Written (under the subtransaction's id) before the snapshot is taken,
        # committed after: the snapshot's text lists only the top id.
        await writer.execute(text(
            "UPDATE inventories SET total = 8 WHERE resource_provider_id ="
            " (SELECT id FROM resource_providers WHERE uuid = :rp)"), {"rp": rp})
        await writer.execute(text(
            "UPDATE resource_providers SET generation = generation + 1 WHERE uuid = :rp"),
            {"rp": rp})
        old = await _full(engine)
        await writer.commit()
    caught = await _caught_up(engine, old)
    if caught is not None:
        assert _state(caught) == _state(await _full(engine))
    assert await _count(first, "VCPU:8") == 1
