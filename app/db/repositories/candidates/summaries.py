"""Provider summaries: providers, inventories (capacity, used) and traits, one round trip."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    cast,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import in_list_parameter, list_parameter
from app.db.repositories.candidates.statements import cached, fetch_all, int_list

_rp = models.resource_providers
_inv = models.inventories
_alloc = models.allocations
_rpt = models.resource_provider_traits
_traits = models.traits


@dataclass
class SummaryRows:
    """What provider summaries are built from."""

    # id -> (uuid, parent id, root id)
    providers: dict[int, tuple[str, int | None, int]] = field(default_factory=dict)
    # id -> [(class id, capacity, used)]
    inventories: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    # id -> trait names, in trait id order
    traits: dict[int, list[str]] = field(default_factory=dict)
    # The same rows cut by tree, (root, tree rows) in ascending ids, when every tree
    # holds a range of ids none other holds (None: no such cut). A source hands out
    # the same TreeRows object while a tree is unchanged, so renderers may keep
    # what they built from one (see :mod:`.memory`). A tree of one provider may
    # come as (root, None): its rows are only in the maps above.
    trees: "list[tuple[int, TreeRows | None]] | None" = None


@dataclass(frozen=True, eq=False, slots=True)
class TreeRows:
    """The summary rows of one tree's providers (never changed once built)."""

    providers: dict[int, tuple[str, int | None, int]]
    inventories: dict[int, list[tuple[int, int, int]]]
    traits: dict[int, list[str]]
    first: int  # the smallest and the largest provider id of the tree
    last: int


def _summary_statement(dialect: str, whole_trees: bool, some_classes: bool) -> Any:
    """(kind, provider, a, b, c, ratio, text) rows, one round trip for all of:

    * 0: a provider: a = parent id, b = root id, text = uuid;
    * 1: an inventory: a = class id, b = total - reserved, c = used;
    * 2: a trait: a = trait id, text = its name.
    """

    def row(kind: int, *values: Any) -> list[Any]:
        types = [Integer, Integer, Integer, Integer, Integer, Float, String]
        return [
            cast(value, type_).label(f"c{index}")
            for index, (value, type_) in enumerate(
                zip((literal_column(str(kind)), *values), types, strict=True)
            )
        ]

    none: ColumnElement[Any] = literal_column("NULL")
    # The selected providers once (a CTE the three parts join), rather than one
    # id-list filter per part: half the database CPU for 1,000 providers.
    provider = _rp.alias()
    chosen = (
        select(
            provider.c.id,
            provider.c.parent_provider_id,
            provider.c.root_provider_id,
            provider.c.uuid,
        )
        .where(
            in_list_parameter(
                dialect, provider.c.root_provider_id if whole_trees else provider.c.id, "ids"
            )
        )
        .cte("chosen")
    )
    providers = select(
        *row(
            0,
            chosen.c.id,
            chosen.c.parent_provider_id,
            chosen.c.root_provider_id,
            none,
            none,
            chosen.c.uuid,
        )
    )
    inv = _inv.alias()
    # Usage: one grouped pass over the allocations of the providers selected.
    alloc = _alloc.alias()
    usage = (
        select(
            alloc.c.resource_provider_id.label("provider"),
            alloc.c.resource_class_id.label("rc"),
            func.sum(alloc.c.used).label("used"),
        )
        .select_from(chosen.join(alloc, alloc.c.resource_provider_id == chosen.c.id))
        .group_by(alloc.c.resource_provider_id, alloc.c.resource_class_id)
        .subquery()
    )
    inventories = select(
        *row(
            1,
            inv.c.resource_provider_id,
            inv.c.resource_class_id,
            inv.c.total - inv.c.reserved,
            func.coalesce(usage.c.used, 0),
            inv.c.allocation_ratio,
            none,
        )
    ).select_from(
        chosen.join(inv, inv.c.resource_provider_id == chosen.c.id).outerjoin(
            usage,
            and_(
                usage.c.provider == inv.c.resource_provider_id,
                usage.c.rc == inv.c.resource_class_id,
            ),
        )
    )
    if some_classes:
        inventories = inventories.where(inv.c.resource_class_id.in_(int_list("rcs")))
    rpt = _rpt.alias()
    traits = select(
        *row(2, rpt.c.resource_provider_id, rpt.c.trait_id, none, none, none, _traits.c.name)
    ).select_from(
        chosen.join(rpt, rpt.c.resource_provider_id == chosen.c.id).join(
            _traits, _traits.c.id == rpt.c.trait_id
        )
    )
    return providers, inventories, traits


async def summary_rows(
    conn: AsyncConnection,
    ids: Iterable[int],
    *,
    whole_trees: bool,
    with_traits: bool = True,
    rc_ids: Sequence[int] | None = None,
) -> SummaryRows:
    """Providers, inventories (capacity, used) and traits of the given trees or providers.

    ``rc_ids`` limits the inventories to those classes (summaries below 1.27).
    """
    dialect = conn.dialect.name

    def build() -> Any:
        providers, inventories, traits = _summary_statement(
            dialect, whole_trees, rc_ids is not None
        )
        return union_all(providers, inventories, traits) if with_traits else union_all(
            providers, inventories
        )

    statement = cached(("summaries", dialect, whole_trees, rc_ids is not None, with_traits), build)
    params: dict[str, Any] = {"ids": list_parameter(dialect, ids)}
    if rc_ids is not None:
        params["rcs"] = list(rc_ids)
    out = SummaryRows()
    providers = out.providers
    inventories = out.inventories
    traits: dict[int, list[tuple[int, str]]] = {}
    for kind, id_, a, b, c, ratio, text in await fetch_all(conn, statement, params):
        if kind == 1:
            entry = (a, int(b * ratio), c)
            listed = inventories.get(id_)
            if listed is None:
                inventories[id_] = [entry]
            else:
                listed.append(entry)
        elif kind == 0:
            providers[id_] = (text, a, b)
        else:
            traits.setdefault(id_, []).append((a, text))
    for id_, pairs in traits.items():
        if len(pairs) > 1:
            pairs.sort()
        out.traits[id_] = [name for _, name in pairs]
    return out


async def provider_uuids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, str]:
    dialect = conn.dialect.name
    statement = cached(
        ("uuids", dialect),
        lambda: select(_rp.c.id, _rp.c.uuid).where(in_list_parameter(dialect, _rp.c.id, "ids")),
    )
    rows = await fetch_all(conn, statement, {"ids": list_parameter(dialect, ids)})
    return {id_: uuid for id_, uuid in rows}
