"""Database faults and errors as answers (issue 12): a SQLite file that cannot
be written or is locked past the lock timeout answers 503 with Retry-After in
the placement format, /healthcheck notices, an unexpected error answers the
placement 500 without escaping to the server, and a request whose client went
away is rolled back. The PostgreSQL faults under load are tests/faults/."""

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.engine import make_engine
from app.db.timeouts import Kind, Timeouts
from app.exceptions import DatabaseUnavailable
from app.routers import ops
from app.routers.ops import HEALTHCHECK_TIMEOUT
from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, running_app
from tests.databases import is_postgresql, is_server, sqlite_url
from tests.live_server import LiveServer


def _placement_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    (error,) = response.json()["errors"]
    assert error["status"] == 503
    assert error["request_id"].startswith("req-")
    assert "sqlite" not in response.text.lower()


@contextmanager
def sqlite_write_lock(path: Path) -> Iterator[None]:
    """Another connection holding the file's write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def _synced(path: Path) -> None:
    async with running_app(Settings(database_url=sqlite_url(path))):
        pass


def _client(app: FastAPI) -> httpx.AsyncClient:
    # No contract hook: the injected route below is not in the documents.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://placement.test", headers=ADMIN_LATEST)


async def test_read_only_sqlite_answers_503_on_writes_and_fails_the_healthcheck(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ro.sqlite"
    await _synced(path)
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    async with running_app(Settings(database_url=url, sync_on_startup=False)) as app:
        async with _client(app) as client:
            assert (await client.get("/resource_providers")).status_code == 200
            _placement_503(await client.post("/resource_providers", json={"name": "x"}))
            health = await client.get("/healthcheck")
            assert health.status_code == 503
            assert health.json()["checks"]["database"]["status"] == "fail"


async def test_locked_sqlite_answers_503_after_the_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    settings = Settings(database_url=sqlite_url(path), db_lock_timeout=0.5)
    async with running_app(settings) as app, _client(app) as client:
        with sqlite_write_lock(path):
            started = time.monotonic()
            response = await client.post("/resource_providers", json={"name": "x"})
            waited = time.monotonic() - started
            _placement_503(response)
            assert waited < 5, waited
            assert (await client.get("/healthcheck")).status_code == 503
        assert (await client.post("/resource_providers", json={"name": "x"})).status_code == 200
        assert (await client.get("/healthcheck")).status_code == 200


async def test_unexpected_error_is_the_placement_500_and_does_not_escape(
    tmp_path: Path,
) -> None:
    async def boom() -> None:
        raise RuntimeError("secret detail")

    async with running_app(Settings(database_url=sqlite_url(tmp_path / "u.sqlite"))) as app:
        app.add_api_route("/boom", boom)
        # ASGITransport re-raises what escapes the app (as uvicorn would log it and
        # drop the connection): the answer must come back instead.
        async with _client(app) as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    (error,) = response.json()["errors"]
    assert error["status"] == 500
    assert error["request_id"].startswith("req-")
    assert "secret" not in response.text
    assert response.headers["openstack-api-version"].startswith("placement 1.")


def test_request_whose_client_went_away_is_rolled_back(tmp_path: Path) -> None:
    """The client gives up while the write waits for a lock: once the lock is
    free the write must not commit (it used to, long after the client left)."""
    path = tmp_path / "gone.sqlite"
    asyncio.run(_synced(path))
    name = f"gone-{uuid.uuid4().hex[:8]}"
    server = LiveServer(sqlite_url(path), tmp_path / "server.log",
                        env={"PLACEMENT_DB_LOCK_TIMEOUT": "8"})
    with server:
        with sqlite_write_lock(path):
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{server.url}/resource_providers", json={"name": name},
                           headers=ADMIN_LATEST, timeout=1.0)
            time.sleep(1.0)
        time.sleep(1.5)
        listed = httpx.get(f"{server.url}/resource_providers", params={"name": name},
                           headers=ADMIN_LATEST, timeout=10)
        assert listed.json()["resource_providers"] == []
    assert any("client went away" in line for line in server.log_lines())


async def test_statement_over_its_kinds_time_limit_is_unavailable(database_url: str) -> None:
    """A statement running past its kind's limit is cut off by the server and
    answered 503 (PostgreSQL statement_timeout, MariaDB max_statement_time)."""
    if not is_server(database_url):
        pytest.skip("statement time limits are the database server's (run under test-pg/-mysql)")
    limits = Timeouts(read=5.0, candidates=0.3)
    database = Database(make_engine(database_url, timeouts=limits), timeouts=limits)
    sleep = "SELECT pg_sleep(3)" if is_postgresql(database_url) else "SELECT SLEEP(3)"

    async def slow(conn: AsyncConnection) -> None:
        await conn.execute(text(sleep))

    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as raised:
            await database.read(slow, kind=Kind.CANDIDATES)
        assert time.monotonic() - started < 2.5
        assert raised.value.headers["retry-after"]
        # The connection's own limit is back for the next unit of work of another kind.
        await database.read(lambda conn: conn.execute(text("SELECT 1")))
    finally:
        await database.dispose()


async def test_healthcheck_keeps_its_time_limit_while_the_database_waits(
    tmp_path: Path,
) -> None:
    """The write probe waits for a lock longer than the healthcheck may take:
    the answer comes at the healthcheck's limit, not the lock's."""
    path = tmp_path / "slow.sqlite"
    settings = Settings(database_url=sqlite_url(path), db_lock_timeout=20)
    async with running_app(settings) as app, _client(app) as client:
        with sqlite_write_lock(path):
            started = time.monotonic()
            response = await client.get("/healthcheck")
            waited = time.monotonic() - started
        # The probe given up on finishes by itself once the lock is free.
        for _ in range(100):
            if not ops._ABANDONED:
                break
            await asyncio.sleep(0.1)
        assert not ops._ABANDONED
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["reason"] == "timeout"
    assert HEALTHCHECK_TIMEOUT <= waited < HEALTHCHECK_TIMEOUT + 2, waited


async def test_statement_whose_session_the_server_ended_runs_again(database_url: str) -> None:
    """An autocommitted statement whose backend is terminated while it runs
    (PostgreSQL's 57P01, as in a restart or pg_terminate_backend) was rolled
    back by the server before it said so: it runs again on a fresh connection
    instead of answering 503 as an unknown outcome."""
    if not is_postgresql(database_url):
        pytest.skip("the server ending a session mid-statement is PostgreSQL's 57P01")
    database = Database(make_engine(database_url))
    runs: list[int] = []

    async def terminate_soon(pid: int) -> None:
        await asyncio.sleep(0.3)
        async with database.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await other.commit()

    async def slow_statement(conn: AsyncConnection) -> int:
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        runs.append(pid)
        ender = asyncio.create_task(terminate_soon(pid)) if len(runs) == 1 else None
        await conn.execute(text("SELECT pg_sleep(2)" if ender else "SELECT 1"))
        return len(runs)

    try:
        assert await database.single_statement(slow_statement) == 2
        assert runs[0] != runs[1]
        assert database.stats.reconnects == 1
    finally:
        await database.dispose()


async def test_pooled_connection_the_server_ended_costs_no_statement(database_url: str) -> None:
    """A pooled connection whose backend was terminated while it sat in the pool,
    taken before the driver has noticed: the statement (autocommitted, so its
    loss in flight would be an unknown outcome) runs on a fresh connection."""
    if not is_postgresql(database_url):
        pytest.skip("terminating an idle backend is PostgreSQL's pg_terminate_backend")
    database = Database(make_engine(database_url))
    ender = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))

    async def pid(conn: AsyncConnection) -> int:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    try:
        for _ in range(12):
            backend = await database.single_statement(pid)
            await ender.execute("SELECT pg_terminate_backend($1)", backend)
            # At once: the driver may not have read the server's goodbye yet.
            assert await database.single_statement(pid) > 0
        assert database.stats.reconnects >= 12
    finally:
        await ender.close()
        await database.dispose()
