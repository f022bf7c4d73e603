"""Whether the schema sync has anything to do, answered without alembic.

Every worker syncs the schema at start-up, and on every start but the first
the database is already current. Importing alembic (and mako) to find that out
costs each worker about 8 MB for its whole life; this check reads the version
row and the standard rows with three plain queries instead, and only when
something is missing does the caller run :func:`app.db.schema.sync_database`.

The head revision comes from the migration files themselves (their
``revision`` / ``down_revision`` lines); ``tests/test_schema_state.py`` checks
it against alembic's answer.
"""

import re
from functools import cache
from pathlib import Path

import os_resource_classes
import os_traits
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

# app.db.schema.VERSION_TABLE (importing that module imports alembic).
VERSION_TABLE = "placement_api_version"
VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


@cache
def head_revision() -> str | None:
    """The one revision no other revises (None: no migrations, or several heads)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text()
        revisions.update(_REVISION.findall(source))
        revised.update(_DOWN_REVISION.findall(source))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


async def schema_is_current(engine: AsyncEngine) -> bool:
    """At the head revision, with every standard resource class and trait."""
    head = head_revision()
    if head is None:
        return False
    try:
        async with engine.connect() as conn:
            versions = set((await conn.execute(
                text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalars())
            if versions != {head}:
                return False
            classes = set((await conn.execute(text("SELECT name FROM resource_classes")))
                          .scalars())
            if not classes.issuperset(os_resource_classes.STANDARDS):
                return False
            traits = set((await conn.execute(text("SELECT name FROM traits"))).scalars())
            return traits.issuperset(os_traits.get_traits())
    except DBAPIError:
        # No version table yet (a new database, or one the reference created):
        # the sync has work to do, and reports any real problem itself.
        return False
