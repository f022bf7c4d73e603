"""Tests run the real app over ASGI against a real database.

SQLite (a fresh file per test) by default; PostgreSQL or MySQL/MariaDB when
``PLACEMENT_TEST_DATABASE_URL`` names a server database
(``postgresql+asyncpg://postgres@127.0.0.1:5432/test``,
``mysql+asyncmy://root@127.0.0.1:3306/test``): each test then gets a fresh
database created beside it (``tests/databases.py``).
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, asgi_client, running_app
from tests.databases import (
    TEST_SERVER_URL,
    fresh_database,
    is_mysql,
    is_postgresql,
    scratch_database,
)


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with scratch_database(TEST_SERVER_URL, tmp_path) as url:
        yield url


@pytest.fixture
async def postgresql_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, for the tests that only make sense there."""
    if not is_postgresql(TEST_SERVER_URL):
        pytest.skip("needs PostgreSQL: set PLACEMENT_TEST_DATABASE_URL")
    async with fresh_database(TEST_SERVER_URL) as url:
        yield url


@pytest.fixture
async def mysql_url() -> AsyncIterator[str]:
    """A fresh MySQL/MariaDB database, for the tests that only make sense there."""
    if not is_mysql(TEST_SERVER_URL):
        pytest.skip("needs MySQL/MariaDB: set PLACEMENT_TEST_DATABASE_URL=mysql+asyncmy://...")
    async with fresh_database(TEST_SERVER_URL) as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, auth_strategy="noauth2")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as running:
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client at the latest microversion, with the app's lifespan run."""
    async with asgi_client(app, ADMIN_LATEST) as http_client:
        yield http_client


@pytest.fixture
def engine(app: FastAPI) -> AsyncEngine:
    """The app's engine, for tests that write rows straight into the tables."""
    database_engine: AsyncEngine = app.state.database.engine
    return database_engine


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many responses the OpenAPI contract checked (tests/openapi_contract.py)."""
    from tests.openapi_contract import CHECKED

    if CHECKED:
        terminalreporter.write_line(
            f"OpenAPI contract: {sum(CHECKED.values())} responses matched their "
            f"microversion's document, at {len(CHECKED)} microversions"
        )
