"""Provider set-up writes in few round trips (app/db/repositories/provider_setup*.py).

PostgreSQL: one autocommitted statement each, and a writer that commits
between that statement's snapshot and its row lock makes it write nothing (the
ordinary unit of work then answers). MySQL/MariaDB: a short transaction for a
provider's first inventories, traits and aggregates, nothing sent on the
connection but its statements (together, one round trip) and COMMIT; names
compare exactly there too.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, asgi_client, make_provider, running_app
from tests.databases import is_server
from tests.sent_statements import sent_through_asyncpg, sent_through_sqlalchemy

V1_18 = {"openstack-api-version": "placement 1.18"}


@pytest.fixture
async def pg_app(postgresql_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(Settings(database_url=postgresql_url, auth_strategy="noauth2")) as app:
        yield app


@pytest.fixture
async def pg_client(pg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(pg_app, ADMIN_LATEST) as client:
        yield client


@pytest.fixture
async def server_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on the configured server database (PostgreSQL or MySQL)."""
    if not is_server(database_url):
        pytest.skip("needs a server database: set PLACEMENT_TEST_DATABASE_URL")
    async with running_app(Settings(database_url=database_url, auth_strategy="noauth2")) as app:
        async with asgi_client(app, ADMIN_LATEST) as client:
            yield client


@pytest.fixture
async def mysql_app(mysql_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(Settings(database_url=mysql_url, auth_strategy="noauth2")) as app:
        yield app


async def test_each_populate_write_is_one_statement(
    pg_app: FastAPI, pg_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement on the wire for each (no BEGIN, no COMMIT), and none of
    them through SQLAlchemy's execution: on asyncpg they run on the driver's
    own connection (app/db/driver_statement.py)."""
    through_sqlalchemy = sent_through_sqlalchemy(pg_app)
    sent = sent_through_asyncpg(monkeypatch)
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
        through_sqlalchemy.clear()
        response = await pg_client.request(method, path, json=body)
        assert response.status_code == 200, response.text
        assert len(sent) == 1, (path, sent)
        assert through_sqlalchemy == [], (path, through_sqlalchemy)

    shown = (await pg_client.get(f"/resource_providers/{child}")).json()
    assert (shown["parent_provider_uuid"], shown["root_provider_uuid"]) == (root, root)
    inventories = (await pg_client.get(f"/resource_providers/{root}/inventories")).json()
    assert inventories["resource_provider_generation"] == 4
    assert {name: inv["total"] for name, inv in inventories["inventories"].items()} == {
        "VCPU": 16, "MEMORY_MB": 512}
    traits = (await pg_client.get(f"/resource_providers/{root}/traits")).json()
    assert sorted(traits["traits"]) == ["CUSTOM_X", "HW_CPU_X86_AVX2"]


async def test_failures_are_worded_by_the_ordinary_path(server_client: httpx.AsyncClient) -> None:
    """What the short forms do not write (taken name, stale generation,
    unknown class, class in use) answers as before."""
    pg_client = server_client
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


def _sent_on_the_wire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every command the MySQL driver sends from now on (SQLAlchemy's own
    isolation, COMMIT and rollback statements included)."""
    from asyncmy import connection

    sent: list[str] = []
    send = connection.Connection._execute_command  # type: ignore[attr-defined]

    async def recorded(self: Any, command: int, sql: Any) -> Any:
        sent.append(sql if isinstance(sql, str) else bytes(sql).decode(errors="replace"))
        return await send(self, command, sql)

    monkeypatch.setattr(connection.Connection, "_execute_command", recorded)
    return sent


async def test_populate_writes_are_short_transactions_on_mysql(
    mysql_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with asgi_client(mysql_app, ADMIN_LATEST) as client:
        known = str(uuid.uuid4())
        other = await make_provider(client)
        created = await client.put(f"/resource_providers/{other}/aggregates",
                                   json={"resource_provider_generation": 0, "aggregates": [known]})
        assert created.status_code == 200, created.text
        assert (await client.put("/traits/CUSTOM_X")).status_code == 201
        sent = _sent_on_the_wire(monkeypatch)
        root, child = str(uuid.uuid4()), str(uuid.uuid4())
        steps: list[tuple[str, str, dict[str, Any], int]] = [
            ("POST", "/resource_providers", {"uuid": root, "name": f"rp-{root}"}, 2),
            ("POST", "/resource_providers",
             {"uuid": child, "name": f"rp-{child}", "parent_provider_uuid": root}, 2),
            ("PUT", f"/resource_providers/{root}/inventories",
             {"resource_provider_generation": 0,
              "inventories": {"VCPU": {"total": 8}, "DISK_GB": {"total": 100, "min_unit": 5}}},
             2),
            ("PUT", f"/resource_providers/{root}/aggregates",
             {"resource_provider_generation": 1, "aggregates": [known, known.upper()]}, 2),
            ("PUT", f"/resource_providers/{root}/traits",
             {"resource_provider_generation": 2, "traits": ["HW_CPU_X86_AVX2", "CUSTOM_X"]}, 2),
        ]
        for method, path, body, round_trips in steps:
            sent.clear()
            response = await client.request(method, path, json=body)
            assert response.status_code == 200, response.text
            assert len(sent) == round_trips, (path, sent)
            assert sent[-1] == "COMMIT"

        # A set that is not empty: the ordinary path replaces it.
        replaced = await client.put(f"/resource_providers/{root}/inventories", json={
            "resource_provider_generation": 3,
            "inventories": {"VCPU": {"total": 16}, "MEMORY_MB": {"total": 512}}})
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["resource_provider_generation"] == 4
        shown = (await client.get(f"/resource_providers/{child}")).json()
        assert (shown["parent_provider_uuid"], shown["root_provider_uuid"]) == (root, root)
        inventories = (await client.get(f"/resource_providers/{root}/inventories")).json()
        assert {name: inv["total"] for name, inv in inventories["inventories"].items()} == {
            "VCPU": 16, "MEMORY_MB": 512}
        aggregates = (await client.get(f"/resource_providers/{root}/aggregates")).json()
        assert aggregates["aggregates"] == [known]
        traits = (await client.get(f"/resource_providers/{root}/traits")).json()
        assert sorted(traits["traits"]) == ["CUSTOM_X", "HW_CPU_X86_AVX2"]
        assert traits["resource_provider_generation"] == 4


async def test_names_compare_exactly_on_mysql(mysql_app: FastAPI) -> None:
    """MySQL's collation ignores case; a trait or class named in another case
    is unknown, as in the reference's (and the ordinary path's) answers."""
    async with asgi_client(mysql_app, ADMIN_LATEST) as client:
        rp = await make_provider(client)
        path = f"/resource_providers/{rp}"
        traits = await client.put(f"{path}/traits", json={
            "resource_provider_generation": 0, "traits": ["hw_cpu_x86_avx2"]})
        assert traits.status_code == 400, traits.text
        inventories = await client.put(f"{path}/inventories", json={
            "resource_provider_generation": 0, "inventories": {"vcpu": {"total": 4}}})
        assert inventories.status_code == 400, inventories.text
        assert (await client.get(path)).json()["generation"] == 0


async def test_mysql_sessions_keep_the_level_each_unit_of_work_asks(
    mysql_app: FastAPI, mysql_url: str
) -> None:
    """Levels set only when they change still apply: a read's snapshot level, an
    autocommitted read, then a write at READ COMMITTED again, on one pooled
    connection; and nothing is left open on a returned connection."""
    from app.db.database import Database
    from app.db.engine import make_engine

    db = Database(make_engine(mysql_url, pool_size=1, max_overflow=0))

    async def level(conn: Any) -> tuple[str, int]:
        row = (await conn.execute(text("SELECT @@tx_isolation, @@autocommit"))).one()
        return str(row[0]), int(row[1])

    try:
        for _ in range(2):
            assert await db.write(level, keyed=True) == ("READ-COMMITTED", 0)
            assert await db.read(level) == ("REPEATABLE-READ", 0)
            assert await db.single_read(level) == ("READ-COMMITTED", 1)
            assert await db.write(level, keyed=True) == ("READ-COMMITTED", 0)
            assert await db.single_read(level) == ("READ-COMMITTED", 1)
            assert await db.write(level) == ("REPEATABLE-READ", 0)

        # A transaction the driver opened behind SQLAlchemy's back is rolled
        # back on return.
        async with db.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            await driver.query("SELECT id FROM traits LIMIT 1")
            assert driver.get_transaction_status()
        assert not driver.get_transaction_status()
    finally:
        await db.dispose()


async def test_mysql_batches_answer_each_statement_and_stop_at_an_error(
    mysql_app: FastAPI,
) -> None:
    """A batch (app/db/mysql_batch.py) answers each statement's outcome; an error
    raises as for one statement, the statements after it do not run, and the
    connection stays usable."""
    from app.db import mysql_batch

    engine: AsyncEngine = mysql_app.state.database.engine
    names = ["HW_CPU_X86_AVX2", "HW_CPU_X86_SSE2"]
    reads = mysql_batch.compose(
        "SELECT 1",
        "UPDATE traits SET name = name WHERE 1 = 0",
        "SELECT name FROM traits WHERE name IN :names ORDER BY name",
        expanding=("names",),
    )
    insert = "INSERT INTO traits (name, created_at) VALUES ({}, NOW())"
    failing = mysql_batch.compose(
        insert.format(":first"), insert.format(":first"), insert.format(":second"))
    first, second = f"CUSTOM_BATCH_{uuid.uuid4().hex[:8]}", f"CUSTOM_BATCH_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as conn:
        selected, updated, found = await mysql_batch.run(conn, reads, {"names": names})
        assert selected.rows == [(1,)]
        assert updated.rowcount == 0
        assert updated.rows == []
        assert found.rows == [(name,) for name in names]
        with pytest.raises(IntegrityError):
            await mysql_batch.run(conn, failing, {"first": first, "second": second})
        await conn.rollback()
        stored = await conn.execute(
            text("SELECT name FROM traits WHERE name IN (:first, :second)"),
            {"first": first, "second": second})
        assert stored.all() == []
