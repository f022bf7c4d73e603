"""Create or upgrade the schema and sync the standard classes and traits.

Safe when several workers start at once on an empty database: on PostgreSQL
the whole step runs under a transaction-scoped advisory lock, on SQLite under
the write lock. MySQL commits every DDL statement by itself and a Galera
cluster has no named locks (``GET_LOCK`` is unsupported there), so there
concurrent workers race instead: each runs the migrations in the same order,
the first ``CREATE TABLE`` a loser tries already exists (or its version row
or standard rows are duplicates), and the loser starts over after a pause,
until it finds the schema at head.

A database this service creates also gets the reference's ``alembic_version``
at the reference's head (migration 0002), so the reference's own
``placement-manage db sync`` accepts it as current.
"""

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import os_resource_classes
import os_traits
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Table, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import models
from app.db.dialect import insert_ignoring_duplicates
from app.db.engine import is_sqlite, mysql_error_number

LOG = logging.getLogger(__name__)

# Our migration history lives beside, never in, the reference's alembic_version.
VERSION_TABLE = "placement_api_version"
_ADVISORY_LOCK_KEY = 0x504C4143  # "PLAC"
_MIGRATIONS = Path(__file__).parent / "migrations"
# What a worker racing another through the MySQL schema sync may see: a table,
# column, index or constraint the other created (1050, 1060, 1061, 1826, 1005),
# one not there yet (1146), a duplicate version or standard row (1062), a
# deadlock or lock wait between them (1213, 1205).
_MYSQL_SYNC_RACES = frozenset({1005, 1050, 1060, 1061, 1062, 1146, 1205, 1213, 1826})
MYSQL_SYNC_TIMEOUT = 120.0


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _migrate(connection: Connection) -> None:
    config = _alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "resource_providers" in tables and VERSION_TABLE not in tables:
        # A database the reference created: its schema is our first revision.
        command.stamp(config, "0001")
    command.upgrade(config, "head")


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _insert_ignoring_duplicates(
    connection: Connection, table: Table, rows: list[dict[str, Any]]
) -> None:
    if rows:
        connection.execute(insert_ignoring_duplicates(connection, table), rows)


def _sync_standard_rows(connection: Connection) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    known_classes = set(connection.execute(select(models.resource_classes.c.name)).scalars())
    _insert_ignoring_duplicates(
        connection,
        models.resource_classes,
        [
            {"id": index, "name": name, "created_at": now}
            for index, name in enumerate(os_resource_classes.STANDARDS)
            if name not in known_classes
        ],
    )
    known_traits = set(connection.execute(select(models.traits.c.name)).scalars())
    _insert_ignoring_duplicates(
        connection,
        models.traits,
        [
            {"name": name, "created_at": now}
            for name in os_traits.get_traits()
            if name not in known_traits
        ],
    )


def _sync(connection: Connection) -> None:
    _migrate(connection)
    _sync_standard_rows(connection)


async def sync_database(engine: AsyncEngine) -> None:
    """Bring the schema to head and insert missing standard rows."""
    if is_sqlite(engine):
        async with engine.connect() as raw:
            conn = await raw.execution_options(placement_write=True)
            async with conn.begin():
                await conn.run_sync(_sync)
        return
    if engine.dialect.name == "mysql":
        await _sync_racing(engine)
        return
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        await conn.run_sync(_sync)


async def _sync_racing(engine: AsyncEngine) -> None:
    """MySQL: sync, starting over while another worker's sync gets in the way."""
    deadline = time.monotonic() + MYSQL_SYNC_TIMEOUT
    while True:
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_sync)
            return
        except (DBAPIError, CommandError) as exc:
            # CommandError: alembic found its version row moved by the other worker.
            raced = isinstance(exc, CommandError) or mysql_error_number(exc) in _MYSQL_SYNC_RACES
            if not raced or time.monotonic() > deadline:
                raise
            LOG.info("schema sync met another worker's (%s); starting over", exc)
        await asyncio.sleep(random.uniform(0.2, 0.6))
