"""Throw-away databases for the tests and the benchmarks.

SQLite: a file in a directory the caller owns (pytest's ``tmp_path``, a
temporary directory). PostgreSQL: a new database created beside the one a URL
names, on the same server, dropped ``WITH (FORCE)`` afterwards so that
connections a killed server process left behind do not keep it alive.
MySQL/MariaDB (``mysql+asyncmy://root@127.0.0.1:3306/test``): likewise a new
database on the server the URL names (the URL's own database need not exist).

Each create/drop opens and disposes its own administrative engine: the sync
variant runs them in two separate event loops (an engine's connections belong
to the loop that opened them).
"""

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeGuard

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db.urls import async_url

# A PostgreSQL server database (postgresql+asyncpg://postgres@127.0.0.1:5432/test)
# or a MySQL/MariaDB one (mysql+asyncmy://root@127.0.0.1:3306/test) the tests
# create their own databases beside; unset: SQLite files.
TEST_SERVER_URL = os.environ.get("PLACEMENT_TEST_DATABASE_URL") or None


def is_postgresql(url: str | None) -> TypeGuard[str]:
    return url is not None and url.startswith("postgresql")


def is_mysql(url: str | None) -> TypeGuard[str]:
    return url is not None and url.startswith(("mysql", "mariadb"))


def is_server(url: str | None) -> TypeGuard[str]:
    """A database server's URL (PostgreSQL or MySQL), not a SQLite file's."""
    return is_postgresql(url) or is_mysql(url)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def sibling_url(server_url: str, name: str) -> str:
    """``server_url`` with its database name replaced by ``name``."""
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


async def _admin(server_url: str, statement: str) -> None:
    # AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction. On MySQL
    # the server's URL without its database (which need not exist).
    if is_mysql(server_url):
        server_url = sibling_url(server_url, "")
    engine = create_async_engine(
        async_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_database(server_url: str, prefix: str = "placement_test") -> str:
    """A new empty database beside ``server_url``'s; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    quoted = f"`{name}`" if is_mysql(server_url) else f'"{name}"'
    await _admin(server_url, f"CREATE DATABASE {quoted}")
    return sibling_url(server_url, name)


async def drop_database(server_url: str, database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1].split("?", 1)[0]
    if is_mysql(server_url):
        await _admin(server_url, f"DROP DATABASE IF EXISTS `{name}`")
    else:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(
    server_url: str, prefix: str = "placement_test", *, keep: bool = False
) -> AsyncIterator[str]:
    """A new server database for the block, dropped after it (unless ``keep``)."""
    url = await create_database(server_url, prefix)
    try:
        yield url
    finally:
        if not keep:
            await drop_database(server_url, url)


def _sqlite_default(url: str | None, directory: Path | None, prefix: str) -> str:
    if url:
        return url
    # No directory: a new one that outlives the run (a benchmark's database to look at).
    directory = directory or Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    return sqlite_url(directory / "placement.sqlite")


@asynccontextmanager
async def scratch_database(
    url: str | None,
    directory: Path | None = None,
    prefix: str = "placement_test",
    *,
    keep: bool = False,
) -> AsyncIterator[str]:
    """What a test or benchmark runs on, given a URL or none.

    A PostgreSQL or MySQL URL names the server: a fresh database beside it. A
    SQLite URL is used as it is; none: ``placement.sqlite`` in ``directory``.
    """
    if is_server(url):
        async with fresh_database(url, prefix, keep=keep) as fresh:
            yield fresh
        return
    yield _sqlite_default(url, directory, prefix)


@contextmanager
def scratch_database_sync(
    url: str | None,
    directory: Path | None = None,
    prefix: str = "placement_test",
    *,
    keep: bool = False,
) -> Iterator[str]:
    """``scratch_database`` for code outside an event loop (a benchmark's main)."""
    if not is_server(url):
        yield _sqlite_default(url, directory, prefix)
        return
    fresh = asyncio.run(create_database(url, prefix))
    try:
        yield fresh
    finally:
        if not keep:
            asyncio.run(drop_database(url, fresh))
