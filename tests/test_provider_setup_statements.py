"""Provider set-up writes on PostgreSQL in one autocommitted statement
(app/db/repositories/provider_setup_postgresql.py): one round trip each, and
a writer that commits between that statement's snapshot and its row lock
makes it write nothing (the ordinary unit of work then answers)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, asgi_client, make_provider, running_app

V1_18 = {"openstack-api-version": "placement 1.18"}


@pytest.fixture
async def pg_app(postgresql_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(Settings(database_url=postgresql_url, auth_strategy="noauth2")) as app:
        yield app


@pytest.fixture
async def pg_client(pg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(pg_app, ADMIN_LATEST) as client:
        yield client


def _statements(app: FastAPI) -> list[str]:
    """Every statement the app's engine sends from now on."""
    sent: list[str] = []
    engine: AsyncEngine = app.state.database.engine

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return sent


async def test_each_populate_write_is_one_statement(
    pg_app: FastAPI, pg_client: httpx.AsyncClient
) -> None:
    sent = _statements(pg_app)
    root, child = str(uuid.uuid4()), str(uuid.uuid4())
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/resource_providers", {"uuid": root, "name": f"rp-{root}"}),
        ("POST", "/resource_providers",
         {"uuid": child, "name": f"rp-{child}", "parent_provider_uuid": root}),
        ("PUT", f"/resource_providers/{root}/inventories",
         {"resource_provider_generation": 0,
          "inventories": {"VCPU": {"total": 8}, "DISK_GB": {"total": 100, "min_unit": 5}}}),
        ("PUT", f"/resource_providers/{root}/inventories",  # one kept, one removed, one added
         {"resource_provider_generation": 1,
          "inventories": {"VCPU": {"total": 16}, "MEMORY_MB": {"total": 512}}}),
        ("PUT", f"/resource_providers/{root}/aggregates",
         {"resource_provider_generation": 2, "aggregates": [str(uuid.uuid4())]}),
        ("PUT", f"/resource_providers/{root}/traits",
         {"resource_provider_generation": 3, "traits": ["HW_CPU_X86_AVX2", "CUSTOM_X"]}),
    ]
    assert (await pg_client.put("/traits/CUSTOM_X")).status_code == 201
    for method, path, body in steps:
        sent.clear()
        response = await pg_client.request(method, path, json=body)
        assert response.status_code == 200, response.text
        assert len(sent) == 1, (path, sent)

    shown = (await pg_client.get(f"/resource_providers/{child}")).json()
    assert (shown["parent_provider_uuid"], shown["root_provider_uuid"]) == (root, root)
    inventories = (await pg_client.get(f"/resource_providers/{root}/inventories")).json()
    assert inventories["resource_provider_generation"] == 4
    assert {name: inv["total"] for name, inv in inventories["inventories"].items()} == {
        "VCPU": 16, "MEMORY_MB": 512}
    traits = (await pg_client.get(f"/resource_providers/{root}/traits")).json()
    assert sorted(traits["traits"]) == ["CUSTOM_X", "HW_CPU_X86_AVX2"]


async def test_failures_are_worded_by_the_ordinary_path(pg_client: httpx.AsyncClient) -> None:
    """What the one statement does not write (taken name, stale generation,
    unknown class, class in use) answers as before."""
    rp = await make_provider(pg_client, {"VCPU": {"total": 8}})
    taken = await pg_client.post("/resource_providers", json={"name": f"rp-{rp}"})
    assert taken.status_code == 409
    stale = await pg_client.put(f"/resource_providers/{rp}/inventories",
                                json={"resource_provider_generation": 0,
                                      "inventories": {"VCPU": {"total": 4}}})
    assert stale.status_code == 409
    unknown = await pg_client.put(f"/resource_providers/{rp}/inventories",
                                  json={"resource_provider_generation": 1,
                                        "inventories": {"CUSTOM_NOPE": {"total": 4}}})
    assert unknown.status_code == 400
    consumer = str(uuid.uuid4())
    claim = await pg_client.put(f"/allocations/{consumer}", json={
        "allocations": {rp: {"resources": {"VCPU": 2}}}, "consumer_generation": None,
        "project_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()),
        "consumer_type": "INSTANCE"})
    assert claim.status_code == 204, claim.text
    generation = (await pg_client.get(f"/resource_providers/{rp}")).json()["generation"]
    in_use = await pg_client.put(f"/resource_providers/{rp}/inventories",
                                 json={"resource_provider_generation": generation,
                                       "inventories": {"DISK_GB": {"total": 4}}})
    assert in_use.status_code == 409
    assert in_use.json()["errors"][0]["code"] == "placement.inventory.inuse"


async def test_a_pre_1_19_aggregates_writer_is_not_lost(
    pg_app: FastAPI, pg_client: httpx.AsyncClient
) -> None:
    """A 1.18 writer (no generation move) commits while a 1.19 writer's
    statement waits for the provider row: the 1.19 set must replace it whole,
    never leave the 1.18 writer's aggregates beside it."""
    rp = await make_provider(pg_client)
    path = f"/resource_providers/{rp}/aggregates"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    engine: AsyncEngine = pg_app.state.database.engine
    async with engine.connect() as other:
        # What a 1.18 PUT does, held open: row rewritten, then the set.
        await other.execute(text(
            "UPDATE resource_providers SET generation = generation WHERE uuid = :u"), {"u": rp})
        await other.execute(text(
            "INSERT INTO placement_aggregates (uuid, created_at) VALUES (:a, now())"),
            {"a": first})
        await other.execute(text(
            "INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, "
            "created_at) SELECT p.id, a.id, now() FROM resource_providers p, "
            "placement_aggregates a WHERE p.uuid = :u AND a.uuid = :a"),
            {"u": rp, "a": first})
        writer = asyncio.create_task(pg_client.put(
            path, json={"resource_provider_generation": 0, "aggregates": [second]}))
        for _ in range(100):  # until the writer waits for the row lock
            await asyncio.sleep(0.05)
            async with engine.connect() as probe:
                blocked = (await probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"))).scalar()
            if blocked:
                break
        assert blocked, "the 1.19 writer never waited for the row"
        await other.commit()
        response = await writer
    assert response.status_code == 200, response.text
    listed = (await pg_client.get(path)).json()
    assert listed["aggregates"] == [second]
    assert listed["resource_provider_generation"] == 1
    old = (await pg_client.get(path, headers=V1_18)).json()
    assert old["aggregates"] == [second]
