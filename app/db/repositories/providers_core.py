"""Provider lookups and generation compare-and-swap shared by every repository.

"Provider by uuid or 404" is a rule, not a statement: services use
:func:`app.services.lookups.require_provider`.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.database import RowMoved
from app.records import ProviderRow

_rp = models.resource_providers
_parent = _rp.alias("parent")
_root = _rp.alias("root")


def provider_select() -> Select[Any]:
    """SELECT of every ``ProviderRow`` column, parent and root uuids joined in."""
    return (
        select(
            _rp.c.id,
            _rp.c.uuid,
            _rp.c.name,
            _rp.c.generation,
            _rp.c.parent_provider_id,
            _rp.c.root_provider_id,
            _parent.c.uuid,
            _root.c.uuid,
            _rp.c.created_at,
            _rp.c.updated_at,
        )
        .select_from(_rp)
        .outerjoin(_parent, _parent.c.id == _rp.c.parent_provider_id)
        .outerjoin(_root, _root.c.id == _rp.c.root_provider_id)
    )


def provider_from_row(row: Row[Any]) -> ProviderRow:
    values = list(row)
    values[3] = values[3] or 0
    return ProviderRow(*values)


async def find_provider(conn: AsyncConnection, uuid: str) -> ProviderRow | None:
    if "\x00" in uuid:  # never stored; PostgreSQL rejects a NUL even in a comparison
        return None
    row = (await conn.execute(provider_select().where(_rp.c.uuid == uuid))).first()
    return provider_from_row(row) if row else None


async def bump_generation(
    conn: AsyncConnection,
    provider_id: int,
    seen_generation: int,
    *,
    now: datetime | None = None,
) -> int:
    """Compare-and-swap the provider generation ``seen_generation`` (read in this
    transaction); :class:`RowMoved` (the unit of work is retried) if someone else
    moved it since."""
    values: dict[str, object] = {"generation": seen_generation + 1}
    if now is not None:
        values["updated_at"] = now
    result = await conn.execute(
        update(_rp)
        .where(_rp.c.id == provider_id, _rp.c.generation == seen_generation)
        .values(**values)
    )
    if result.rowcount != 1:
        raise RowMoved()
    return seen_generation + 1


async def lock_provider_row(conn: AsyncConnection, provider_id: int) -> None:
    """Lock the provider's row until the end of the transaction (SQLite's write
    transaction already excludes every other writer): writers of one provider
    that change nothing else of it queue here, and at READ COMMITTED each then
    reads what the one before it committed. An UPDATE that changes no value,
    not ``FOR UPDATE``: it writes a new row version, which the one-statement
    writes of PostgreSQL (``provider_setup_postgresql``) see as a change."""
    await conn.execute(
        update(_rp).where(_rp.c.id == provider_id).values(generation=_rp.c.generation)
    )
