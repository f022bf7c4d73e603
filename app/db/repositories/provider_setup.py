"""Provider set-up writes in the fewest round trips the database allows.

One function per write, each answering ``None`` when it wrote nothing: the
caller then runs its ordinary unit of work (which words the errors in the
reference's order). PostgreSQL: one autocommitted statement
(``provider_setup_postgresql``); MySQL/MariaDB: a short transaction for the
common case (``provider_setup_mysql``); SQLite: always the ordinary path.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, TypeVar

from app.db.database import Database
from app.db.repositories import provider_setup_mysql as mysql
from app.db.repositories import provider_setup_postgresql as postgresql
from app.records import InventoryRecord, ProviderRow

TraitStamp = postgresql.TraitStamp
T = TypeVar("T")


async def _short_form(
    db: Database,
    values: Sequence[str],
    write: Callable[[Any, Any], Awaitable[T | None]],
) -> T | None:
    """``write`` with the form of ``db``'s dialect (the module, which names the
    same functions in both), when it takes ``values``; ``None`` otherwise. The
    form's ``attempt`` hands ``write`` what its statements run on (a connection,
    or PostgreSQL's one-statement runner)."""
    forms: tuple[ModuleType, ...] = (postgresql, mysql)
    form = next((form for form in forms if form.applies(db, *values)), None)
    if form is None:
        return None
    written: T | None = await form.attempt(db, lambda conn: write(form, conn))
    return written


async def create_provider(
    db: Database, name: str, uuid: str, parent_uuid: str | None, now: datetime
) -> ProviderRow | None:
    return await _short_form(
        db, (uuid, name, parent_uuid or ""),
        lambda form, conn: form.create_provider(conn, name, uuid, parent_uuid, now))


async def replace_inventories(
    db: Database,
    uuid: str,
    seen_generation: int,
    records: Mapping[str, InventoryRecord],
    now: datetime,
) -> int | None:
    return await _short_form(
        db, (uuid, *records),
        lambda form, conn: form.replace_inventories(conn, uuid, seen_generation, records, now))


async def replace_traits(
    db: Database, uuid: str, seen_generation: int, names: Sequence[str], now: datetime
) -> tuple[int, list[TraitStamp]] | None:
    if not names:
        return None
    return await _short_form(
        db, (uuid, *names),
        lambda form, conn: form.replace_traits(conn, uuid, seen_generation, names, now))


async def replace_aggregates(
    db: Database, uuid: str, seen_generation: int, uuids: Sequence[str], now: datetime
) -> int | None:
    return await _short_form(
        db, (uuid, *uuids),
        lambda form, conn: form.replace_aggregates(conn, uuid, seen_generation, uuids, now))
