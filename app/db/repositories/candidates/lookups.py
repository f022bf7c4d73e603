"""Small lookups of the search: existence checks, room left, parents.

The existence checks decide whether an unknown name is reported or the answer
is empty (the reference's order); room left and parents feed the combination
of group solutions.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import in_list_parameter, list_parameter
from app.db.repositories.candidates.predicates import aggregates_ok, anchor_ok, used_amount
from app.db.repositories.candidates.shapes import (
    AnchorFilter,
    GroupQuery,
    Sharing,
    params_of,
    shape_of,
)
from app.db.repositories.candidates.statements import cached, fetch_all, int_list

_rp = models.resource_providers
_inv = models.inventories


# -- existence checks (the error precedence) --------------------------------------------

async def any_root_matches(conn: AsyncConnection, anchors: AnchorFilter) -> bool:
    shape = shape_of(conn, GroupQuery(0, "", []), anchors, None, Sharing())
    root = _rp.alias()
    statement = (
        select(root.c.id)
        .where(root.c.parent_provider_id.is_(None), *anchor_ok(root.c.id, shape))
        .limit(1)
    )
    params = params_of(conn, GroupQuery(0, "", []), anchors, None, Sharing())
    return (await conn.execute(statement, params)).first() is not None


async def any_provider_in_aggregates(
    conn: AsyncConnection, member_of: list[list[int]]
) -> bool:
    provider = _rp.alias()
    statement = (
        select(provider.c.id).where(aggregates_ok(provider.c.id, len(member_of), "")).limit(1)
    )
    params = {f"member{j}": ids for j, ids in enumerate(member_of)}
    return (await conn.execute(statement, params)).first() is not None


# -- lookups for combination and summaries ----------------------------------------------

async def room_left(
    conn: AsyncConnection, provider_ids: Iterable[int], rc_ids: Sequence[int]
) -> dict[tuple[int, int], int]:
    """min(capacity - used, max_unit) per (provider, class): the most one request may take."""
    dialect = conn.dialect.name

    def build() -> Any:
        inv = _inv.alias()
        return select(
            inv.c.resource_provider_id,
            inv.c.resource_class_id,
            inv.c.total,
            inv.c.reserved,
            inv.c.allocation_ratio,
            inv.c.max_unit,
            used_amount(inv),
        ).where(
            in_list_parameter(dialect, inv.c.resource_provider_id, "providers"),
            inv.c.resource_class_id.in_(int_list("rcs")),
        )

    rows = await fetch_all(
        conn,
        cached(("room", dialect), build),
        {"providers": list_parameter(dialect, provider_ids), "rcs": list(rc_ids)},
    )
    result: dict[tuple[int, int], int] = {}
    for provider, rc, total, reserved, ratio, max_unit, in_use in rows:
        capacity = int((total - reserved) * ratio)
        result[(provider, rc)] = min(capacity - int(in_use), max_unit)
    return result


async def parents_in_trees(
    conn: AsyncConnection, root_ids: Iterable[int]
) -> dict[int, int | None]:
    """Parent id of every provider in the given trees."""
    dialect = conn.dialect.name
    statement = cached(
        ("parents", dialect),
        lambda: select(_rp.c.id, _rp.c.parent_provider_id).where(
            in_list_parameter(dialect, _rp.c.root_provider_id, "roots")
        ),
    )
    rows = await fetch_all(conn, statement, {"roots": list_parameter(dialect, root_ids)})
    return {id_: parent for id_, parent in rows}
