"""Ids of the projects, users and consumer types that claims name.

They are created on first use, in a short transaction of their own before
(not inside) the claim that needs them, and remembered per process.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories.consumers import CONSUMER_TYPE, PROJECT, USER, NameKey, ensure_ids


@dataclass
class Names:
    """Ids of the projects, users and consumer types some claims name."""

    projects: dict[str, int]
    users: dict[str, int]
    types: dict[str, int]


# Ids of external project/user ids and consumer type names never change once
# created (no API deletes them), so each process remembers them per database.
_CACHE_LIMIT = 50_000
_name_caches: "WeakKeyDictionary[Engine, dict[NameKey, int]]" = WeakKeyDictionary()


def _cache(db: Database) -> dict[NameKey, int]:
    engine = db.engine.sync_engine
    cache = _name_caches.get(engine)
    if cache is None:
        cache = _name_caches[engine] = {}
    return cache


async def resolve_names(
    db: Database,
    projects: Iterable[str],
    users: Iterable[str],
    types: Iterable[str],
    *,
    now: datetime,
) -> Names:
    """Ids for the names, creating the missing ones."""
    cache = _cache(db)
    wanted = {PROJECT: set(projects), USER: set(users), CONSUMER_TYPE: set(types)}
    missing = {kind: {n for n in names if (kind, n) not in cache}
               for kind, names in wanted.items()}
    if any(missing.values()):

        async def create(conn: AsyncConnection) -> dict[NameKey, int]:
            return await ensure_ids(conn, missing, now)

        created = await db.write(create)
        if len(cache) + len(created) > _CACHE_LIMIT:
            cache.clear()
        cache.update(created)
        lookup = {**cache, **created}
    else:
        lookup = cache
    return Names(
        {name: lookup[(PROJECT, name)] for name in wanted[PROJECT]},
        {name: lookup[(USER, name)] for name in wanted[USER]},
        {name: lookup[(CONSUMER_TYPE, name)] for name in wanted[CONSUMER_TYPE]},
    )
