"""The read URL: its settings and which handlers read through it.

The standby itself (PostgreSQL streaming replication) is in tests/replica/;
here a second SQLite file stands in for a standby that has not seen the
primary's writes, so the routing shows without a replication set-up.
"""

import os
from pathlib import Path

import pytest

from app.config import show
from app.db.engine import make_engine
from app.db.replica import ReadReplica
from app.db.schema import sync_database
from app.settings import Settings
from tests.allocation_helpers import body
from tests.api_helpers import ADMIN_LATEST, asgi_client, make_provider, new_uuid, running_app
from tests.databases import sqlite_url

CONF = """[placement_database]
connection = postgresql+psycopg2://placement:s3cret@primary.example.com/placement
slave_connection = postgresql+psycopg2://placement:s3cret@standby.example.com/placement
"""


@pytest.fixture(autouse=True)
def _no_placement_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PLACEMENT_") or name == "OS_PLACEMENT_CONFIG_DIR":
            monkeypatch.delenv(name)


def test_slave_connection_is_the_read_url_and_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "placement.conf").write_text(CONF)
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(tmp_path))
    settings = Settings()
    assert settings.database_read_url == \
        "postgresql+psycopg2://placement:s3cret@standby.example.com/placement"
    text = "\n".join(show.lines(settings))
    assert "s3cret" not in text
    assert "database_read_url = postgresql+psycopg2://placement:***@standby.example.com" in text
    monkeypatch.setenv("PLACEMENT_DATABASE_READ_URL", "postgresql://other/placement")
    assert Settings().database_read_url == "postgresql://other/placement"


async def test_without_a_read_url_every_read_uses_the_primary(tmp_path: Path) -> None:
    settings = Settings(database_url=sqlite_url(tmp_path / "p.sqlite"), auth_strategy="noauth2")
    async with running_app(settings) as app:
        assert app.state.read_database is app.state.database


async def test_lag_tolerant_reads_use_the_read_url_and_the_rest_the_primary(
    tmp_path: Path,
) -> None:
    # A "standby" with the schema but none of the primary's rows.
    standby_url = sqlite_url(tmp_path / "standby.sqlite")
    engine = make_engine(standby_url)
    await sync_database(engine)
    await engine.dispose()
    settings = Settings(database_url=sqlite_url(tmp_path / "primary.sqlite"),
                        database_read_url=standby_url, auth_strategy="noauth2")
    async with running_app(settings) as app, asgi_client(app, ADMIN_LATEST) as client:
        replica = app.state.read_database
        assert isinstance(replica, ReadReplica)
        assert replica.primary is app.state.database
        rp = await make_provider(client, {"VCPU": {"total": 4}})
        consumer = new_uuid()
        claimed = await client.put(f"/allocations/{consumer}", json=body({rp: {"VCPU": 1}}))
        assert claimed.status_code == 204, claimed.text
        # Lag-tolerant: the standby's (empty) answers.
        listed = await client.get("/resource_providers")
        assert listed.json()["resource_providers"] == []
        found = await client.get("/allocation_candidates", params={"resources": "VCPU:1"})
        assert found.json()["allocation_requests"] == []
        assert (await client.get("/usages", params={"project_id": "p1"})).json()["usages"] == {}
        usages = await client.get(f"/resource_providers/{rp}/usages")
        assert usages.status_code == 404
        # What a client's next write depends on: the primary's.
        for path in (f"/resource_providers/{rp}", f"/resource_providers/{rp}/inventories",
                     f"/allocations/{consumer}", f"/resource_providers/{rp}/allocations",
                     f"/resource_providers/{rp}/traits",
                     f"/resource_providers/{rp}/aggregates"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
        shown = await client.get(f"/allocations/{consumer}")
        assert shown.json()["allocations"][rp]["resources"] == {"VCPU": 1}
