"""One autocommitted statement on asyncpg's own connection (app/db/driver_statement.py,
``Database.single_rows``): the same outcomes as through SQLAlchemy when the
database refuses it, cuts it off, or ends its session."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from app.db.database import Database
from app.db.driver_statement import Refused
from app.db.engine import make_engine
from app.db.timeouts import Timeouts
from app.exceptions import DatabaseUnavailable
from app.settings import Settings
from tests.api_helpers import running_app
from tests.databases import is_postgresql

_PID = text("SELECT pg_backend_pid()")


def _needs_asyncpg(database_url: str) -> None:
    if not is_postgresql(database_url):
        pytest.skip("the driver's own path is PostgreSQL's (asyncpg)")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    _needs_asyncpg(database_url)
    db = Database(make_engine(database_url))
    try:
        yield db
    finally:
        await db.dispose()


async def test_rows_parameters_and_the_pool(database: Database) -> None:
    """Named parameters (one used twice) reach their places; the connection
    goes back to the pool; each statement counts as a committed write."""
    statement = text("SELECT CAST(:a AS INTEGER) + :b, CAST(:a AS INTEGER), "
                     "CAST(:names AS VARCHAR[])")
    for _ in range(3):
        rows = await database.single_rows(statement, {"b": 2, "a": 40, "names": ["x", "y"]})
        assert [tuple(row) for row in rows] == [(42, 40, ["x", "y"])]
    assert database.stats.writes == 3
    assert database.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_refused_statement_names_its_sqlstate_and_writes_nothing(
    database_url: str,
) -> None:
    _needs_asyncpg(database_url)
    async with running_app(Settings(database_url=database_url, auth_strategy="noauth2")) as app:
        await _refused(app.state.database)


async def _refused(database: Database) -> None:
    name = f"CUSTOM_DRIVER_{uuid.uuid4().hex[:8].upper()}"
    insert = text("INSERT INTO traits (name, created_at) VALUES (:name, now()) RETURNING id")
    assert len(await database.single_rows(insert, {"name": name})) == 1
    with pytest.raises(Refused) as refused:
        await database.single_rows(insert, {"name": name})
    assert refused.value.sqlstate == "23505"
    count = text("SELECT count(*) FROM traits WHERE name = :name")
    assert (await database.single_rows(count, {"name": name}))[0][0] == 1
    assert database.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_statement_past_its_time_limit_is_unavailable(database_url: str) -> None:
    """Autocommitted, the statement has the session's limit (the read kind's)."""
    _needs_asyncpg(database_url)
    limits = Timeouts(read=0.3)
    database = Database(make_engine(database_url, timeouts=limits), timeouts=limits)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            await database.single_rows(text("SELECT pg_sleep(3)"), {})
        assert time.monotonic() - started < 2.5
        assert (await database.single_rows(text("SELECT 1"), {}))[0][0] == 1
    finally:
        await database.dispose()


async def test_a_statement_whose_session_the_server_ended_runs_again(
    database: Database, database_url: str
) -> None:
    """Terminated while it runs (57P01): rolled back by the server, so it runs
    again on a fresh connection rather than answering 503."""
    ender = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    marker = f"driver-{uuid.uuid4().hex}"

    async def terminate_once() -> None:
        for _ in range(100):
            await asyncio.sleep(0.05)
            ended = await ender.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE $1 AND pid <> pg_backend_pid()", f"%{marker}%")
            if ended:
                return

    try:
        killer = asyncio.create_task(terminate_once())
        rows = await database.single_rows(
            text(f"SELECT pg_backend_pid(), pg_sleep(1), '{marker}'"), {})
        await killer
        assert rows[0][2] == marker
        assert database.stats.reconnects == 1
    finally:
        await ender.close()


async def test_a_pooled_connection_the_server_ended_costs_no_statement(
    database: Database, database_url: str
) -> None:
    ender = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for _ in range(12):
            backend = (await database.single_rows(_PID, {}))[0][0]
            await ender.execute("SELECT pg_terminate_backend($1)", backend)
            # At once: the driver may not have read the server's goodbye yet.
            assert (await database.single_rows(_PID, {}))[0][0] != backend
        assert database.stats.reconnects >= 12
    finally:
        await ender.close()


async def test_a_cancelled_statement_drops_its_connection(database: Database) -> None:
    """Cancelled (its client went away), the connection is not pooled again."""
    first = (await database.single_rows(_PID, {}))[0][0]
    sleeping = asyncio.create_task(database.single_rows(text("SELECT pg_sleep(2)"), {}))
    await asyncio.sleep(0.3)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    assert database.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert (await database.single_rows(_PID, {}))[0][0] != first
