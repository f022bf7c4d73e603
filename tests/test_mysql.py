"""What is particular to MySQL/MariaDB (run by ``make test-mysql``; skipped elsewhere).

* several workers syncing the schema of one empty database at once all start,
  and leave it at head exactly once (no named lock: Galera has none);
* strings compare as the reference compares them on MySQL, where the tables'
  collation (``utf8mb4_general_ci``) ignores case: lookups by UUID, name or
  aggregate find the row whatever the case, while trait names and resource
  classes in query parameters and paths are checked in Python and stay exact
  (answers observed on the reference, placement 16.0 on MariaDB 10.11);
* an unreachable database is a 503 with the placement error body, not a 500.
"""

import asyncio
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from app.db.engine import make_engine
from app.db.schema import VERSION_TABLE, current_revision, head_revision
from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, app_client, code, make_provider, new_uuid

WORKERS = 4
ROOT = Path(__file__).resolve().parent.parent


_SYNC = """
import asyncio, sys
from app.db.engine import make_engine
from app.db.schema import sync_database

async def main() -> None:
    engine = make_engine(sys.argv[1])
    await sync_database(engine)
    await engine.dispose()

asyncio.run(main())
"""


async def test_workers_sync_an_empty_database_at_once(mysql_url: str) -> None:
    # Processes, as workers are (alembic's context is global to a process).
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SYNC, mysql_url, cwd=ROOT, stderr=asyncio.subprocess.PIPE)
        for _ in range(WORKERS)
    ]
    outcomes = [(await worker.communicate())[1].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * WORKERS, outcomes
    engine = make_engine(mysql_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(current_revision) == head_revision()
            versions = (await conn.execute(text(f"SELECT COUNT(*) FROM {VERSION_TABLE}")))
            assert versions.scalar() == 1
            reference = await conn.execute(text("SELECT version_num FROM alembic_version"))
            assert [row[0] for row in reference] == ["a082b8bb98d0"]
            vcpu = await conn.execute(text("SELECT id FROM resource_classes WHERE name='VCPU'"))
            assert vcpu.scalar() == 0
    finally:
        await engine.dispose()


async def _listed(client: httpx.AsyncClient, query: str) -> list[str]:
    response = await client.get(f"/resource_providers?{query}")
    assert response.status_code == 200, response.text
    return [provider["name"] for provider in response.json()["resource_providers"]]


async def test_strings_compare_as_the_reference_does_on_mysql(mysql_url: str) -> None:
    settings = Settings(database_url=mysql_url, auth_strategy="noauth2")
    async with app_client(settings, ADMIN_LATEST) as client:
        uuid = await make_provider(client, name="Alpha")
        aggregate = new_uuid()
        put = await client.put(f"/resource_providers/{uuid}/aggregates",
                               json={"aggregates": [aggregate], "resource_provider_generation": 0})
        assert put.status_code == 200, put.text
        # The collation finds these...
        assert (await client.get(f"/resource_providers/{uuid.upper()}")).status_code == 200
        assert await _listed(client, f"uuid={uuid.upper()}") == ["Alpha"]
        assert await _listed(client, "name=alpha") == ["Alpha"]
        assert await _listed(client, f"member_of={aggregate.upper()}") == ["Alpha"]
        duplicate = await client.post("/resource_providers", json={"name": "ALPHA"})
        assert duplicate.status_code == 409
        assert code(duplicate) == "placement.duplicate_name"
        # ... the same aggregate in another case is the same aggregate ...
        again = await client.put(
            f"/resource_providers/{uuid}/aggregates",
            json={"aggregates": [aggregate.upper()], "resource_provider_generation": 1})
        assert again.status_code == 200, again.text
        # ... and so are a project or user named in another case.
        for project in ("Project-A", "project-a"):
            claim = await client.put(f"/allocations/{new_uuid()}", json={
                "allocations": {}, "project_id": project, "user_id": "u",
                "consumer_generation": None, "consumer_type": "INSTANCE"})
            assert claim.status_code == 204, claim.text
        # Names checked in Python stay exact, as in the reference.
        assert (await client.get("/resource_classes/vcpu")).status_code == 404
        assert (await client.get("/traits/hw_cpu_x86_avx")).status_code == 404
        assert (await client.put("/traits/CUSTOM_ABC")).status_code == 201
        assert (await client.get("/traits/custom_abc")).status_code == 404
        traits = await client.get("/resource_providers?required=hw_cpu_x86_avx")
        assert traits.status_code == 400


async def test_unreachable_database_is_a_503() -> None:
    # Nothing listens on port 1; no start-up sync, so the app starts regardless.
    settings = Settings(database_url="mysql+asyncmy://root@127.0.0.1:1/nowhere",
                        auth_strategy="noauth2", sync_on_startup=False)
    async with app_client(settings, ADMIN_LATEST) as client:
        response = await client.get("/resource_providers")
    assert response.status_code == 503
    error = response.json()["errors"][0]
    assert error["status"] == 503
    assert "nowhere" not in error["detail"]
