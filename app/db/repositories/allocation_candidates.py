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

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
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
# Longer id lists travel as one parameter (an array on PostgreSQL, JSON on
# SQLite): the statement text stays the same, so it is compiled and prepared
# once, and no backend limit on bind parameters applies.
SHORT_LIST = 16


def ids_in(conn: AsyncConnection, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """``column IN ids`` for any number of ids."""
    values = sorted(set(ids))
    if len(values) <= SHORT_LIST:
        return column.in_(values)  # type: ignore[no-any-return]
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(Integer)))  # type: ignore[no-any-return]
    each = func.json_each(bindparam(None, json.dumps(values), type_=String)).table_valued(
        "value"
    )
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


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


def _tree_has_any_trait(root: ColumnElement[Any], trait_ids: Sequence[int]) -> ColumnElement[bool]:
    """Some provider of the tree of ``root`` has one of the traits (set computed once)."""
    member = _rp.alias()
    rpt = _rpt.alias()
    roots = (
        select(member.c.root_provider_id)
        .select_from(rpt.join(member, member.c.id == rpt.c.resource_provider_id))
        .where(rpt.c.trait_id.in_(list(trait_ids)))
    )
    return root.in_(roots)


def _anchor_ok(anchor: ColumnElement[Any], anchors: AnchorFilter) -> list[ColumnElement[bool]]:
    return _traits_ok(anchor, [[trait] for trait in anchors.required], anchors.forbidden)


def _in_window(anchor: ColumnElement[Any], window: Window) -> list[ColumnElement[bool]]:
    if window is None:
        return []
    after, upto = window
    return [anchor > after, anchor <= upto]


def _fit(provider: Any, rc_id: int, amount: int) -> tuple[Any, ColumnElement[bool], list[Any]]:
    """Inventory of ``rc_id`` to join to ``provider``, and what makes ``amount`` fit it.

    ``used + amount <= (total - reserved) * allocation_ratio`` (unrounded), within
    min/max unit and a multiple of the step size; ``used`` sums the allocations
    through the (provider, class, used) index.
    """
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
    on = and_(inv.c.resource_provider_id == provider.c.id, inv.c.resource_class_id == rc_id)
    conditions = [
        used + amount <= (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio,
        inv.c.min_unit <= amount,
        inv.c.max_unit >= amount,
        amount % inv.c.step_size == 0,
    ]
    return inv, on, conditions


def _with_fits(
    provider: Any, amounts: Sequence[tuple[int, int]]
) -> tuple[Any, list[ColumnElement[bool]]]:
    joined = provider
    conditions: list[ColumnElement[bool]] = []
    for rc_id, amount in amounts:
        inv, on, fits = _fit(provider, rc_id, amount)
        joined = joined.join(inv, on)
        conditions += fits
    return joined, conditions


def _shared_with(joined: Any, provider: Any) -> tuple[Any, ColumnElement[Any]]:
    """Join the roots of every provider in an aggregate of ``provider``: its anchors."""
    mine = _rpa.alias()
    theirs = _rpa.alias()
    member = _rp.alias()
    joined = (
        joined.join(mine, mine.c.resource_provider_id == provider.c.id)
        .join(theirs, theirs.c.aggregate_id == mine.c.aggregate_id)
        .join(member, member.c.id == theirs.c.resource_provider_id)
    )
    return joined, member.c.root_provider_id


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


@dataclass
class Sharing:
    """The sharing providers of the cloud (usually none) and every trait they have."""

    ids: list[int] = field(default_factory=list)
    traits: set[int] = field(default_factory=set)


async def sharing_providers(conn: AsyncConnection, sharing_trait: int | None) -> Sharing:
    if sharing_trait is None:
        return Sharing()
    marked = select(_rpt.c.resource_provider_id).where(_rpt.c.trait_id == sharing_trait)
    rows = await conn.execute(
        select(_rpt.c.resource_provider_id, _rpt.c.trait_id).where(
            _rpt.c.resource_provider_id.in_(marked)
        )
    )
    out = Sharing()
    for provider, trait in rows:
        if provider not in out.ids:
            out.ids.append(provider)
        out.traits.add(trait)
    out.ids.sort()
    return out


# -- group rows ---------------------------------------------------------------------

async def unsuffixed_rows(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
) -> list[tuple[int, int, int, int, int]]:
    """(rc index, provider, provider root, anchor, trait bits) of the unsuffixed group.

    A pair (X, A) is usable when X fits the class, has no forbidden trait, X or
    the anchor A satisfies ``member_of`` ("an aggregate on the root spans the
    tree"; a sharing X must satisfy it itself), neither is in a forbidden
    aggregate, and A passes ``root_required``. With ``in_tree`` only the
    providers of that tree are used.

    Required traits count over all the providers a candidate takes from, so
    they are checked per combination (the bits), except when the group asks for
    one class: then its one provider must have them all, a filter here. An
    anchor also needs, for each required any-of set, some provider of its tree
    with one of those traits, unless a sharing provider might bring it.
    """
    required = group.required
    single_class = len(group.amounts) == 1
    anchor_needs = [
        ids for ids in required if not single_class and not sharing.traits.intersection(ids)
    ]
    selects: list[Select[Any]] = []
    for rc_index, (rc_id, amount) in enumerate(group.amounts):
        tag: ColumnElement[Any] = literal_column(str(rc_index))
        provider = _rp.alias()
        joined, conditions = _with_fits(provider, [(rc_id, amount)])
        conditions += _traits_ok(provider.c.id, required if single_class else [], group.forbidden)
        if group.forbidden_aggs:
            conditions.append(~_in_any_aggregate(provider.c.id, group.forbidden_aggs))
        bits = (
            literal_column(str((1 << len(required)) - 1))
            if single_class
            else _bits(provider.c.id, required)
        )
        root = provider.c.root_provider_id
        tree = list(conditions)
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
        tree += [_tree_has_any_trait(root, ids) for ids in anchor_needs]
        selects.append(
            select(tag, provider.c.id, root, root, bits)
            .select_from(joined)
            .where(*tree, *_anchor_ok(root, anchors), *_in_window(root, window))
        )
        if group.in_tree_root is not None or not sharing.ids:
            continue
        shared = [ids_in(conn, provider.c.id, sharing.ids), *conditions]
        if group.member_of:
            shared.append(_aggregates_ok(provider.c.id, group.member_of))
        joined, anchor = _shared_with(joined, provider)
        if group.forbidden_aggs:
            shared.append(~_in_any_aggregate(anchor, group.forbidden_aggs))
        shared += [_tree_has_any_trait(anchor, ids) for ids in anchor_needs]
        selects.append(
            select(tag, provider.c.id, root, anchor, bits)
            .select_from(joined)
            .where(*shared, *_anchor_ok(anchor, anchors), *_in_window(anchor, window))
        )
    rows = await conn.execute(union(*selects) if len(selects) > 1 else selects[0])
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _single_provider(
    group: GroupQuery,
) -> tuple[Any, Any, list[ColumnElement[bool]]] | None:
    """(provider, FROM, conditions) for one provider alone satisfying a suffixed group.

    A resource-less group (1.36) only selects providers through a positive
    filter, a required trait or aggregate; without one nothing matches (None),
    and its ``in_tree`` is not applied (the reference's behaviour).
    """
    provider = _rp.alias()
    joined, conditions = _with_fits(provider, group.amounts)
    required = list(group.required)
    if group.resourceless:
        if not (required or group.member_of):
            return None
        if required:
            # Drive the search from the trait index.
            first = required.pop(0)
            conditions.append(
                provider.c.id.in_(
                    select(_rpt.c.resource_provider_id).where(_rpt.c.trait_id.in_(first))
                )
            )
    elif group.in_tree_root is not None:
        conditions.append(provider.c.root_provider_id == group.in_tree_root)
    conditions += _traits_ok(provider.c.id, required, group.forbidden)
    if group.member_of:
        conditions.append(_aggregates_ok(provider.c.id, group.member_of))
    if group.forbidden_aggs:
        conditions.append(~_in_any_aggregate(provider.c.id, group.forbidden_aggs))
    return provider, joined, conditions


async def single_provider_rows(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
) -> list[tuple[int, int, int]]:
    """(provider, provider root, anchor) of the providers that satisfy a suffixed group.

    A sharing provider also serves every anchor it shares an aggregate with.
    """
    found = _single_provider(group)
    if found is None:
        return []
    provider, joined, conditions = found
    root = provider.c.root_provider_id
    selects: list[Select[Any]] = [
        select(provider.c.id, root, root)
        .select_from(joined)
        .where(*conditions, *_anchor_ok(root, anchors), *_in_window(root, window))
    ]
    if sharing.ids:
        joined, anchor = _shared_with(joined, provider)
        selects.append(
            select(provider.c.id, root, anchor)
            .select_from(joined)
            .where(
                ids_in(conn, provider.c.id, sharing.ids),
                *conditions,
                *_anchor_ok(anchor, anchors),
                *_in_window(anchor, window),
            )
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

def _used(inv: Any) -> Any:
    """Sum of the allocations against one inventory row (0 without any)."""
    alloc = _alloc.alias()
    return (
        select(func.coalesce(func.sum(alloc.c.used), 0))
        .where(
            alloc.c.resource_provider_id == inv.c.resource_provider_id,
            alloc.c.resource_class_id == inv.c.resource_class_id,
        )
        .scalar_subquery()
    )


async def room_left(
    conn: AsyncConnection, provider_ids: Iterable[int], rc_ids: Sequence[int]
) -> dict[tuple[int, int], int]:
    """min(capacity - used, max_unit) per (provider, class): the most one request may take."""
    inv = _inv.alias()
    rows = await conn.execute(
        select(
            inv.c.resource_provider_id,
            inv.c.resource_class_id,
            inv.c.total,
            inv.c.reserved,
            inv.c.allocation_ratio,
            inv.c.max_unit,
            _used(inv),
        ).where(
            ids_in(conn, inv.c.resource_provider_id, provider_ids),
            inv.c.resource_class_id.in_(list(rc_ids)),
        )
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
    rows = await conn.execute(
        select(_rp.c.id, _rp.c.parent_provider_id).where(
            ids_in(conn, _rp.c.root_provider_id, root_ids)
        )
    )
    return {id_: parent for id_, parent in rows}


@dataclass
class SummaryRows:
    """What provider summaries are built from."""

    # id -> (uuid, parent id, root id)
    providers: dict[int, tuple[str, int | None, int]] = field(default_factory=dict)
    # id -> [(class id, capacity, used)]
    inventories: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    # id -> trait names, in trait id order
    traits: dict[int, list[str]] = field(default_factory=dict)


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
    out = SummaryRows()
    provider = _rp.alias()
    selected = ids_in(
        conn, provider.c.root_provider_id if whole_trees else provider.c.id, ids
    )
    rows = await conn.execute(
        select(
            provider.c.id,
            provider.c.uuid,
            provider.c.parent_provider_id,
            provider.c.root_provider_id,
        ).where(selected)
    )
    for id_, uuid, parent, root in rows:
        out.providers[id_] = (uuid, parent, root)
    inv = _inv.alias()
    inventory = (
        select(
            inv.c.resource_provider_id,
            inv.c.resource_class_id,
            inv.c.total,
            inv.c.reserved,
            inv.c.allocation_ratio,
            _used(inv),
        )
        .select_from(inv.join(provider, provider.c.id == inv.c.resource_provider_id))
        .where(selected)
    )
    if rc_ids is not None:
        inventory = inventory.where(inv.c.resource_class_id.in_(list(rc_ids)))
    inventories = out.inventories
    for id_, rc, total, reserved, ratio, used in await conn.execute(inventory):
        entry = (rc, int((total - reserved) * ratio), int(used))
        listed = inventories.get(id_)
        if listed is None:
            inventories[id_] = [entry]
        else:
            listed.append(entry)
    if with_traits:
        rpt = _rpt.alias()
        pairs = (
            await conn.execute(
                select(rpt.c.resource_provider_id, rpt.c.trait_id)
                .select_from(rpt.join(provider, provider.c.id == rpt.c.resource_provider_id))
                .where(selected)
                .order_by(rpt.c.trait_id)
            )
        ).all()
        names = await trait_names(conn, {trait for _, trait in pairs})
        traits = out.traits
        for id_, trait in pairs:
            listed_names = traits.get(id_)
            if listed_names is None:
                traits[id_] = [names[trait]]
            else:
                listed_names.append(names[trait])
    return out


async def trait_names(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, str]:
    rows = await conn.execute(
        select(_traits.c.id, _traits.c.name).where(ids_in(conn, _traits.c.id, ids))
    )
    return {id_: name for id_, name in rows}


async def provider_uuids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, str]:
    rows = await conn.execute(select(_rp.c.id, _rp.c.uuid).where(ids_in(conn, _rp.c.id, ids)))
    return {id_: uuid for id_, uuid in rows}
