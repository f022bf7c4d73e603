"""Provider set-up writes in the fewest round trips the database allows.

One function per write, each answering ``None`` when it wrote nothing: the
caller then runs its ordinary unit of work (which words the errors in the
reference's order). PostgreSQL: one autocommitted statement
(``provider_setup_postgresql``); MySQL/MariaDB: a short transaction for the
common case (``provider_setup_mysql``); SQLite: always the ordinary path.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime

from app.db.database import Database
from app.db.repositories import provider_setup_mysql as mysql
from app.db.repositories import provider_setup_postgresql as postgresql
from app.records import InventoryRecord, ProviderRow

TraitStamp = postgresql.TraitStamp


async def create_provider(
    db: Database, name: str, uuid: str, parent_uuid: str | None, now: datetime
) -> ProviderRow | None:
    values = (uuid, name, parent_uuid or "")
    if postgresql.applies(db, *values):
        return await postgresql.attempt(
            db, lambda conn: postgresql.create_provider(conn, name, uuid, parent_uuid, now))
    if mysql.applies(db, *values):
        return await mysql.attempt(
            db, lambda conn: mysql.create_provider(conn, name, uuid, parent_uuid, now))
    return None


async def replace_inventories(
    db: Database,
    uuid: str,
    seen_generation: int,
    records: Mapping[str, InventoryRecord],
    now: datetime,
) -> int | None:
    if postgresql.applies(db, uuid):
        return await postgresql.attempt(
            db, lambda conn: postgresql.replace_inventories(conn, uuid, seen_generation, records,
                                                            now))
    if mysql.applies(db, uuid, *records):
        return await mysql.attempt(
            db, lambda conn: mysql.replace_inventories(conn, uuid, seen_generation, records, now))
    return None


async def replace_traits(
    db: Database, uuid: str, seen_generation: int, names: Sequence[str], now: datetime
) -> tuple[int, list[TraitStamp]] | None:
    if not names:
        return None
    if postgresql.applies(db, uuid, *names):
        return await postgresql.attempt(
            db, lambda conn: postgresql.replace_traits(conn, uuid, seen_generation, names, now))
    if mysql.applies(db, uuid, *names):
        return await mysql.attempt(
            db, lambda conn: mysql.replace_traits(conn, uuid, seen_generation, names, now))
    return None


async def replace_aggregates(
    db: Database, uuid: str, seen_generation: int, uuids: Sequence[str], now: datetime
) -> int | None:
    if postgresql.applies(db, uuid, *uuids):
        return await postgresql.attempt(
            db, lambda conn: postgresql.replace_aggregates(conn, uuid, seen_generation, uuids,
                                                           now))
    if mysql.applies(db, uuid, *uuids):
        return await mysql.attempt(
            db, lambda conn: mysql.replace_aggregates(conn, uuid, seen_generation, uuids, now))
    return None
