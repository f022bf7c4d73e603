"""SQL of ``GET /allocation_candidates``: set-based filtering over indexed columns.

Every filter a provider can be judged by on its own is evaluated in the
database: capacity per (provider, class) against summed usage, min/max unit
and step size, required and forbidden traits, aggregate membership (own or,
for the unsuffixed group, the tree root's), forbidden aggregates, ``in_tree``
and the anchor roots' ``root_required`` traits. The database returns only the
(provider, anchor) pairs that survive, optionally restricted to a window of
anchor ids, plus small lookups (capacity left of stacked classes, parents,
provider summaries). Combining pairs into candidates is left to Python.

Shapes of the rows:

* unsuffixed group, one row per usable (class index, provider, anchor):
  ``(rc_index, provider_id, provider_root_id, anchor_id, trait_bits)`` where
  bit ``k`` of ``trait_bits`` says the provider has a trait of the group's
  ``k``-th required any-of set (traits count over all contributing providers);
* suffixed group, one row per (provider, anchor): ``(provider_id,
  provider_root_id, anchor_id)``: the provider alone satisfies the group.

A sharing provider (trait ``MISC_SHARES_VIA_AGGREGATE``) is paired with its own
root and with every root of a provider that shares an aggregate with it.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models

_rp = models.resource_providers
_inv = models.inventories
_alloc = models.allocations
_rpt = models.resource_provider_traits
_rpa = models.resource_provider_aggregates
_agg = models.placement_aggregates
_traits = models.traits
_rc = models.resource_classes

SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"
# Ids per IN list: well under every backend's bind-parameter limit.
CHUNK = 500


def chunks(ids: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    batch: list[int] = []
    for id_ in ids:
        batch.append(id_)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class GroupQuery:
    """One request group with every name resolved to an internal id."""

    index: int
    suffix: str
    amounts: list[tuple[int, int]]  # (resource class id, amount), request order
    required: list[list[int]] = field(default_factory=list)  # any-of trait id sets
    forbidden: list[int] = field(default_factory=list)
    member_of: list[list[int]] = field(default_factory=list)  # any-of aggregate id sets
    forbidden_aggs: list[int] = field(default_factory=list)
    in_tree_root: int | None = None

    @property
    def same_provider(self) -> bool:
        return self.suffix != ""

    @property
    def resourceless(self) -> bool:
        return not self.amounts


@dataclass
class AnchorFilter:
    """``root_required``: traits the anchor root must have / must not have."""

    required: list[int] = field(default_factory=list)
    forbidden: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.required or self.forbidden)


# Anchors in ``(after, upto]``; ``None`` is every anchor.
Window = tuple[int, int] | None


# -- name resolution -----------------------------------------------------------------

async def ids_by_name(
    conn: AsyncConnection, table: Any, names: Iterable[str]
) -> dict[str, int]:
    """Ids of the named rows of ``resource_classes`` or ``traits`` (unknown left out)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = await conn.execute(select(table.c.name, table.c.id).where(table.c.name.in_(wanted)))
    return {name: id_ for name, id_ in rows}


async def class_ids(conn: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    return await ids_by_name(conn, _rc, names)


async def trait_ids(conn: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    return await ids_by_name(conn, _traits, names)


async def aggregate_ids(conn: AsyncConnection, uuids: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(uuids))
    if not wanted:
        return {}
    rows = await conn.execute(select(_agg.c.uuid, _agg.c.id).where(_agg.c.uuid.in_(wanted)))
    return {uuid: id_ for uuid, id_ in rows}


async def provider_root_ids(conn: AsyncConnection, uuids: Iterable[str]) -> dict[str, int]:
    """Root id of each named provider (unknown uuids left out)."""
    wanted = sorted(set(uuids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(_rp.c.uuid, _rp.c.root_provider_id).where(_rp.c.uuid.in_(wanted))
    )
    return {uuid: root for uuid, root in rows}


async def class_names(conn: AsyncConnection) -> dict[int, str]:
    rows = await conn.execute(select(_rc.c.id, _rc.c.name))
    return {id_: name for id_, name in rows}


# -- predicates ------------------------------------------------------------------

def _has_any_trait(provider: ColumnElement[Any], trait_ids: Sequence[int]) -> ColumnElement[bool]:
    rpt = _rpt.alias()
    return exists().where(
        rpt.c.resource_provider_id == provider, rpt.c.trait_id.in_(list(trait_ids))
    )


def _in_any_aggregate(
    provider: ColumnElement[Any], agg_ids: Sequence[int]
) -> ColumnElement[bool]:
    rpa = _rpa.alias()
    return exists().where(
        rpa.c.resource_provider_id == provider, rpa.c.aggregate_id.in_(list(agg_ids))
    )


def _aggregates_ok(
    provider: ColumnElement[Any], member_of: list[list[int]]
) -> ColumnElement[bool]:
    """The provider itself is in at least one aggregate of every any-of set."""
    return and_(true(), *(_in_any_aggregate(provider, agg_ids) for agg_ids in member_of))


def _traits_ok(
    provider: ColumnElement[Any], required: list[list[int]], forbidden: Sequence[int]
) -> list[ColumnElement[bool]]:
    conditions = [_has_any_trait(provider, ids) for ids in required]
    if forbidden:
        conditions.append(~_has_any_trait(provider, forbidden))
    return conditions


def _anchor_ok(anchor: ColumnElement[Any], anchors: AnchorFilter) -> list[ColumnElement[bool]]:
    return _traits_ok(anchor, [[trait] for trait in anchors.required], anchors.forbidden)


def _in_window(anchor: ColumnElement[Any], window: Window) -> list[ColumnElement[bool]]:
    if window is None:
        return []
    after, upto = window
    return [anchor > after, anchor <= upto]


def _fits(provider: ColumnElement[Any], rc_id: int, amount: int) -> ColumnElement[bool]:
    """The provider has ``rc_id`` inventory with room for ``amount`` (spec "fit")."""
    inv = _inv.alias()
    alloc = _alloc.alias()
    usage = (
        select(
            alloc.c.resource_provider_id.label("provider_id"),
            func.sum(alloc.c.used).label("used"),
        )
        .where(alloc.c.resource_class_id == rc_id)
        .group_by(alloc.c.resource_provider_id)
        .subquery()
    )
    fitting = (
        select(inv.c.resource_provider_id)
        .select_from(inv.outerjoin(usage, usage.c.provider_id == inv.c.resource_provider_id))
        .where(
            inv.c.resource_class_id == rc_id,
            func.coalesce(usage.c.used, 0) + amount
            <= (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio,
            inv.c.min_unit <= amount,
            inv.c.max_unit >= amount,
            amount % inv.c.step_size == 0,
        )
    )
    return provider.in_(fitting)


def _sharing_pairs(
    provider: Any, conditions: list[ColumnElement[bool]], sharing_trait: int
) -> tuple[Any, Any, list[ColumnElement[bool]]]:
    """FROM clause pairing a sharing provider with the roots it shares with."""
    mine = _rpa.alias()
    theirs = _rpa.alias()
    member = _rp.alias()
    joined = (
        provider.join(mine, mine.c.resource_provider_id == provider.c.id)
        .join(theirs, theirs.c.aggregate_id == mine.c.aggregate_id)
        .join(member, member.c.id == theirs.c.resource_provider_id)
    )
    sharing = _has_any_trait(provider.c.id, [sharing_trait])
    return joined, member.c.root_provider_id, [*conditions, sharing]


def _bits(provider: ColumnElement[Any], required: list[list[int]]) -> ColumnElement[Any]:
    if not required:
        return literal_column("0")
    terms = [
        case(
            (_has_any_trait(provider, ids), literal_column(str(1 << k))),
            else_=literal_column("0"),
        )
        for k, ids in enumerate(required)
    ]
    return reduce(lambda left, right: left + right, terms)


# -- group rows ---------------------------------------------------------------------

async def unsuffixed_rows(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing_trait: int | None,
) -> list[tuple[int, int, int, int, int]]:
    """(rc index, provider, provider root, anchor, trait bits) of the unsuffixed group.

    A pair (X, A) is usable when X fits the class, has no forbidden trait, X or
    the anchor A satisfies ``member_of`` ("an aggregate on the root spans the
    tree"; a sharing X must satisfy it itself), neither is in a forbidden
    aggregate, and A passes ``root_required``. With ``in_tree`` only the
    providers of that tree are used.
    """
    selects: list[Select[Any]] = []
    for rc_index, (rc_id, amount) in enumerate(group.amounts):
        tag: ColumnElement[Any] = literal_column(str(rc_index))
        provider = _rp.alias()
        own = [
            _fits(provider.c.id, rc_id, amount),
            *_traits_ok(provider.c.id, [], group.forbidden),
        ]
        if group.forbidden_aggs:
            own.append(~_in_any_aggregate(provider.c.id, group.forbidden_aggs))
        root = provider.c.root_provider_id
        tree = list(own)
        if group.in_tree_root is not None:
            tree.append(root == group.in_tree_root)
        if group.member_of:
            tree.append(
                or_(
                    _aggregates_ok(provider.c.id, group.member_of),
                    _aggregates_ok(root, group.member_of),
                )
            )
        if group.forbidden_aggs:
            tree.append(~_in_any_aggregate(root, group.forbidden_aggs))
        selects.append(
            select(tag, provider.c.id, root, root, _bits(provider.c.id, group.required)).where(
                *tree, *_anchor_ok(root, anchors), *_in_window(root, window)
            )
        )
        if group.in_tree_root is not None or sharing_trait is None:
            continue
        sharing = _rp.alias()
        shared = [
            _fits(sharing.c.id, rc_id, amount),
            *_traits_ok(sharing.c.id, [], group.forbidden),
        ]
        if group.member_of:
            shared.append(_aggregates_ok(sharing.c.id, group.member_of))
        if group.forbidden_aggs:
            shared.append(~_in_any_aggregate(sharing.c.id, group.forbidden_aggs))
        joined, anchor, shared = _sharing_pairs(sharing, shared, sharing_trait)
        if group.forbidden_aggs:
            shared.append(~_in_any_aggregate(anchor, group.forbidden_aggs))
        selects.append(
            select(
                tag,
                sharing.c.id,
                sharing.c.root_provider_id,
                anchor,
                _bits(sharing.c.id, group.required),
            )
            .select_from(joined)
            .where(*shared, *_anchor_ok(anchor, anchors), *_in_window(anchor, window))
        )
    rows = await conn.execute(union(*selects) if len(selects) > 1 else selects[0])
    return [tuple(row) for row in rows]  # type: ignore[misc]


def single_provider_conditions(
    provider: Any, group: GroupQuery
) -> list[ColumnElement[bool]] | None:
    """What one provider must satisfy alone for a suffixed group (None: nothing can).

    A resource-less group (1.36) only selects providers through a positive
    filter, a required trait or aggregate; without one nothing matches, and its
    ``in_tree`` is not applied (the reference's behaviour).
    """
    conditions = [_fits(provider.c.id, rc_id, amount) for rc_id, amount in group.amounts]
    conditions += _traits_ok(provider.c.id, group.required, group.forbidden)
    if group.member_of:
        conditions.append(_aggregates_ok(provider.c.id, group.member_of))
    if group.forbidden_aggs:
        conditions.append(~_in_any_aggregate(provider.c.id, group.forbidden_aggs))
    if group.resourceless:
        if not (group.required or group.member_of):
            return None
    elif group.in_tree_root is not None:
        conditions.append(provider.c.root_provider_id == group.in_tree_root)
    return conditions


async def single_provider_rows(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing_trait: int | None,
) -> list[tuple[int, int, int]]:
    """(provider, provider root, anchor) of the providers that satisfy a suffixed group."""
    provider = _rp.alias()
    conditions = single_provider_conditions(provider, group)
    if conditions is None:
        return []
    root = provider.c.root_provider_id
    selects: list[Select[Any]] = [
        select(provider.c.id, root, root).where(
            *conditions, *_anchor_ok(root, anchors), *_in_window(root, window)
        )
    ]
    if sharing_trait is not None:
        sharing = _rp.alias()
        shared = single_provider_conditions(sharing, group) or [false()]
        joined, anchor, shared = _sharing_pairs(sharing, shared, sharing_trait)
        selects.append(
            select(sharing.c.id, sharing.c.root_provider_id, anchor)
            .select_from(joined)
            .where(*shared, *_anchor_ok(anchor, anchors), *_in_window(anchor, window))
        )
    rows = await conn.execute(union(*selects) if len(selects) > 1 else selects[0])
    return [tuple(row) for row in rows]  # type: ignore[misc]


# -- windows, existence checks --------------------------------------------------------

async def window_end(conn: AsyncConnection, after: int, size: int) -> int | None:
    """The id of the ``size``-th root after ``after`` (or the last one), None when done."""
    roots = (
        select(_rp.c.id)
        .where(_rp.c.parent_provider_id.is_(None), _rp.c.id > after)
        .order_by(_rp.c.id)
        .limit(size)
        .subquery()
    )
    upto = (await conn.execute(select(func.max(roots.c.id)))).scalar()
    return int(upto) if upto is not None else None


async def any_root_matches(conn: AsyncConnection, anchors: AnchorFilter) -> bool:
    root = _rp.alias()
    stmt = (
        select(root.c.id)
        .where(root.c.parent_provider_id.is_(None), *_anchor_ok(root.c.id, anchors))
        .limit(1)
    )
    return (await conn.execute(stmt)).first() is not None


async def any_provider_in_aggregates(
    conn: AsyncConnection, member_of: list[list[int]]
) -> bool:
    provider = _rp.alias()
    stmt = select(provider.c.id).where(_aggregates_ok(provider.c.id, member_of)).limit(1)
    return (await conn.execute(stmt)).first() is not None


# -- lookups for combination and summaries ----------------------------------------------

async def room_left(
    conn: AsyncConnection, provider_ids: Iterable[int], rc_ids: Sequence[int]
) -> dict[tuple[int, int], int]:
    """min(capacity - used, max_unit) per (provider, class): the most one request may take."""
    inv = _inv.alias()
    alloc = _alloc.alias()
    used = (
        select(func.coalesce(func.sum(alloc.c.used), 0))
        .where(
            alloc.c.resource_provider_id == inv.c.resource_provider_id,
            alloc.c.resource_class_id == inv.c.resource_class_id,
        )
        .scalar_subquery()
    )
    result: dict[tuple[int, int], int] = {}
    for batch in chunks(sorted(set(provider_ids))):
        rows = await conn.execute(
            select(
                inv.c.resource_provider_id,
                inv.c.resource_class_id,
                inv.c.total,
                inv.c.reserved,
                inv.c.allocation_ratio,
                inv.c.max_unit,
                used,
            ).where(
                inv.c.resource_provider_id.in_(batch),
                inv.c.resource_class_id.in_(list(rc_ids)),
            )
        )
        for provider, rc, total, reserved, ratio, max_unit, in_use in rows:
            capacity = int((total - reserved) * ratio)
            result[(provider, rc)] = min(capacity - int(in_use), max_unit)
    return result


async def parents_in_trees(
    conn: AsyncConnection, root_ids: Iterable[int]
) -> dict[int, int | None]:
    """Parent id of every provider in the given trees."""
    result: dict[int, int | None] = {}
    for batch in chunks(sorted(set(root_ids))):
        rows = await conn.execute(
            select(_rp.c.id, _rp.c.parent_provider_id).where(
                _rp.c.root_provider_id.in_(batch)
            )
        )
        result.update({id_: parent for id_, parent in rows})
    return result


@dataclass
class SummaryRows:
    """What provider summaries are built from."""

    # id -> (uuid, parent id, root id)
    providers: dict[int, tuple[str, int | None, int]] = field(default_factory=dict)
    # (provider id, class id, capacity, used), inventory order
    inventories: list[tuple[int, int, int, int]] = field(default_factory=list)
    # provider id -> trait names, in trait id order
    traits: dict[int, list[str]] = field(default_factory=dict)


async def summary_rows(
    conn: AsyncConnection, ids: Iterable[int], *, whole_trees: bool
) -> SummaryRows:
    """Providers, inventories (capacity, used) and traits of the given trees or providers."""
    out = SummaryRows()
    inv = _inv.alias()
    alloc = _alloc.alias()
    used = (
        select(func.coalesce(func.sum(alloc.c.used), 0))
        .where(
            alloc.c.resource_provider_id == inv.c.resource_provider_id,
            alloc.c.resource_class_id == inv.c.resource_class_id,
        )
        .scalar_subquery()
    )
    for batch in chunks(sorted(set(ids))):
        provider = _rp.alias()
        selected = (
            provider.c.root_provider_id.in_(batch)
            if whole_trees
            else provider.c.id.in_(batch)
        )
        providers = await conn.execute(
            select(
                provider.c.id,
                provider.c.uuid,
                provider.c.parent_provider_id,
                provider.c.root_provider_id,
            ).where(selected)
        )
        for id_, uuid, parent, root in providers:
            out.providers[id_] = (uuid, parent, root)
        inventories = await conn.execute(
            select(
                inv.c.resource_provider_id,
                inv.c.resource_class_id,
                inv.c.total,
                inv.c.reserved,
                inv.c.allocation_ratio,
                used,
            )
            .select_from(inv.join(provider, provider.c.id == inv.c.resource_provider_id))
            .where(selected)
            .order_by(inv.c.resource_provider_id, inv.c.resource_class_id)
        )
        for id_, rc, total, reserved, ratio, in_use in inventories:
            out.inventories.append((id_, rc, int((total - reserved) * ratio), int(in_use)))
        rpt = _rpt.alias()
        traits = await conn.execute(
            select(rpt.c.resource_provider_id, _traits.c.name)
            .select_from(
                rpt.join(_traits, _traits.c.id == rpt.c.trait_id).join(
                    provider, provider.c.id == rpt.c.resource_provider_id
                )
            )
            .where(selected)
            .order_by(rpt.c.resource_provider_id, rpt.c.trait_id)
        )
        for id_, name in traits:
            out.traits.setdefault(id_, []).append(name)
    return out


async def provider_uuids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, str]:
    result: dict[int, str] = {}
    for batch in chunks(sorted(set(ids))):
        rows = await conn.execute(select(_rp.c.id, _rp.c.uuid).where(_rp.c.id.in_(batch)))
        result.update({id_: uuid for id_, uuid in rows})
    return result
