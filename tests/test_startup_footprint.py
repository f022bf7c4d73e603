"""What a worker does not load at start-up, and the checks that let it skip them.

Each worker holds every module it imports for its whole life: alembic (the
schema sync, only when the database is not current), httpx (Keystone only)
and requests (oslo.policy's http: checks, only when a rule uses one) stay out,
as do the SQLAlchemy dialects of the databases it does not use and the ORM;
PyYAML, netaddr and rfc3986 are registered but not run (app/deferred_import.py),
and pydantic's v1 layer (which FastAPI only looks for) is kept out.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_policy import _external, _parser
from sqlalchemy import text

from app import policy_checks
from app.db import schema, schema_state, sync_child
from app.db.engine import make_engine
from tests.databases import sqlite_url

DEFERRED = ("alembic", "mako", "httpx", "requests")
NOT_RUN = ("yaml", "netaddr", "rfc3986")
# A SQLite worker's unused dialects (about 1.5 MB a worker) and SQLAlchemy's ORM
# (about 6 MB: Core tables only, app/db/async_import.py).
OTHER_DIALECTS = ("sqlalchemy.dialects.mysql", "sqlalchemy.dialects.postgresql", "sqlalchemy.orm")
KEPT_OUT = "pydantic.v1"


def test_a_noauth2_worker_on_a_current_database_imports_none_of_them(tmp_path: Path) -> None:
    env = {**os.environ, "PLACEMENT_DATABASE_URL": sqlite_url(tmp_path / "p.sqlite"),
           "PLACEMENT_AUTH_STRATEGY": "noauth2", "OS_PLACEMENT_CONFIG_DIR": str(tmp_path)}
    env.pop("PLACEMENT_CONFIG_FILE", None)
    program = (
        "import asyncio, sys\n"
        "from app.main import app\n"
        "async def start():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        pass\n"
        "asyncio.run(start())\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(DEFERRED)!r}))\n"
        f"print(sorted({{m for m in sys.modules if m.startswith({OTHER_DIALECTS!r})}}))\n"
        "from app.deferred_import import is_loaded\n"
        f"print([m for m in {NOT_RUN!r} if is_loaded(sys.modules[m])])\n"
        f"print(sys.modules[{KEPT_OUT!r}])\n"
    )

    def loaded() -> str:
        result = subprocess.run([sys.executable, "-c", program], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    # The first start creates the schema (alembic); the next finds it current.
    # (alembic brings every dialect along.)
    assert loaded().splitlines()[0] == "['alembic', 'mako']"  # alembic loads the ORM too
    assert loaded() == "[]\n[]\n[]\nNone"


def test_the_head_revision_and_version_table_match_alembics() -> None:
    assert schema_state.head_revision() == schema.head_revision()
    assert schema_state.VERSION_TABLE == schema.VERSION_TABLE


async def test_schema_is_current_only_after_a_full_sync(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "s.sqlite"))
    try:
        assert not await schema_state.schema_is_current(engine)
        await schema.sync_database(engine)
        assert await schema_state.schema_is_current(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM traits WHERE name = 'HW_CPU_X86_AVX2'"))
        assert not await schema_state.schema_is_current(engine)
        await schema.sync_database(engine)
        assert await schema_state.schema_is_current(engine)
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0001'"))
        assert not await schema_state.schema_is_current(engine)
    finally:
        await engine.dispose()


def test_http_policy_checks_still_parse_once_deferred() -> None:
    policy_checks.defer()
    check = _parser.parse_rule("http://policy.example.com/check")
    assert isinstance(check, _external.HttpCheck)
    check = _parser.parse_rule("https://policy.example.com/check")
    assert isinstance(check, _external.HttpsCheck)


async def test_a_child_process_syncs_the_schema_and_reports_failures(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "c.sqlite")
    await sync_child.sync_in_child(url)
    engine = make_engine(url)
    try:
        assert await schema_state.schema_is_current(engine)
    finally:
        await engine.dispose()
    with pytest.raises(sync_child.SchemaSyncFailed, match="the schema sync failed"):
        await sync_child.sync_in_child(sqlite_url(tmp_path / "no" / "such" / "dir.sqlite"))


def _python(program: str) -> str:
    """What ``program`` prints, run by a fresh interpreter (nothing imported yet)."""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_asyncio_package_still_offers_the_orm_session_when_asked() -> None:
    program = (
        "import sys\n"
        "import app\n"
        "from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine\n"
        "print('sqlalchemy.orm' in sys.modules)\n"
        "from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker\n"
        "import sqlalchemy.ext.asyncio as package\n"
        "print(package.AsyncConnection is AsyncConnection, AsyncSession.__name__,"
        " async_sessionmaker.__name__)\n"
    )
    assert _python(program).split() == ["False", "True", "AsyncSession", "async_sessionmaker"]


def test_an_unexpected_sqlalchemy_layout_falls_back_to_the_ordinary_import() -> None:
    """Should a SQLAlchemy release move what the engine-only import relies on,
    the app still starts, with the package imported the ordinary way."""
    program = (
        "from sqlalchemy.util import concurrency\n"
        "real = concurrency._concurrency_shim\n"
        "class Moved:  # fails the first call (the engine-only import's), as a\n"
        "    def _initialize(self):  # release without it would\n"
        "        concurrency._concurrency_shim = real\n"
        "        raise AttributeError('_initialize')\n"
        "concurrency._concurrency_shim = Moved()\n"
        "import sys, app\n"
        "from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine\n"
        "print('sqlalchemy.orm' in sys.modules)\n"
    )
    assert _python(program) == "True"
