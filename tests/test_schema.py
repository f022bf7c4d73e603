"""The schema: migrations match the models, and a reference-made database is adopted."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from app.db.engine import make_engine
from app.db.models import metadata
from app.db.schema import VERSION_TABLE, current_revision, head_revision, sync_database
from app.settings import Settings
from tests.api_helpers import app_client


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return [
        diff for diff in compare_metadata(context, metadata)
        if not (diff[0] == "remove_table" and diff[1].name in (VERSION_TABLE, "alembic_version"))
    ]


async def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await sync_database(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(current_revision) == head_revision()
    finally:
        await engine.dispose()


async def test_reference_created_database_is_adopted(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            # What the reference's own migrations leave behind.
            await conn.run_sync(metadata.create_all)
            await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('a082b8bb98d0')"))
    finally:
        await engine.dispose()
    async with app_client(Settings(database_url=database_url), base_url="http://t") as client:
        response = await client.get(
            "/resource_classes",
            headers={"x-auth-token": "admin", "openstack-api-version": "placement 1.2"},
        )
        assert response.status_code == 200
        assert len(response.json()["resource_classes"]) >= 21
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(current_revision) == head_revision()
            reference = (await conn.execute(text("SELECT version_num FROM alembic_version")))
            assert reference.scalar() == "a082b8bb98d0"
    finally:
        await engine.dispose()
