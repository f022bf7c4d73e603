"""Tests run the real app over ASGI against a real database.

SQLite (a fresh file per test) by default; PostgreSQL when
``PLACEMENT_TEST_DATABASE_URL`` names a server database
(``postgresql+asyncpg://postgres@127.0.0.1:5432/test``): each test then gets a
fresh database created beside it.
"""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from app.settings import Settings

PG_URL = os.environ.get("PLACEMENT_TEST_DATABASE_URL")


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'placement.sqlite'}"
        return
    name = f"placement_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, auth_strategy="noauth2")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client at the latest microversion, with the app's lifespan run."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://placement.test",
            headers={"x-auth-token": "admin", "openstack-api-version": "placement latest"},
        ) as http_client:
            yield http_client
