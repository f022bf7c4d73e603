"""Filters shared by the candidate statements: fit, traits, aggregates, anchors.

Each builds an SQL expression over bind parameters named after the group's
prefix (``pre``), so a statement built once serves every request of its shape.
"""

from functools import reduce
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal_column, select, true

from app.db import models
from app.db.repositories.candidates.shapes import Shape
from app.db.repositories.candidates.statements import int_list, int_param

_rp = models.resource_providers
_alloc = models.allocations
_rpt = models.resource_provider_traits
_rpa = models.resource_provider_aggregates


def used_amount(inv: Any) -> Any:
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


def fit_conditions(inv: Any, amount: Any) -> list[ColumnElement[bool]]:
    """``amount`` fits the inventory row ``inv`` (spec "fit").

    ``used + amount <= (total - reserved) * allocation_ratio`` (unrounded),
    within min/max unit and a multiple of the step size; ``used`` sums the
    allocations through the (provider, class, used) index.
    """
    return [
        used_amount(inv) + amount <= (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio,
        inv.c.min_unit <= amount,
        inv.c.max_unit >= amount,
        amount % inv.c.step_size == 0,
    ]


def has_any_trait(provider: ColumnElement[Any], trait_ids: Any) -> ColumnElement[bool]:
    rpt = _rpt.alias()
    return exists().where(rpt.c.resource_provider_id == provider, rpt.c.trait_id.in_(trait_ids))


def in_any_aggregate(provider: ColumnElement[Any], agg_ids: Any) -> ColumnElement[bool]:
    rpa = _rpa.alias()
    return exists().where(
        rpa.c.resource_provider_id == provider, rpa.c.aggregate_id.in_(agg_ids)
    )


def aggregates_ok(provider: ColumnElement[Any], sets: int, pre: str) -> ColumnElement[bool]:
    """The provider itself is in an aggregate of every any-of set ``member{j}``."""
    return and_(
        true(), *(in_any_aggregate(provider, int_list(f"{pre}member{j}")) for j in range(sets))
    )


def tree_has_any_trait(root: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """Some provider of the tree of ``root`` has one of the traits (set computed once)."""
    member = _rp.alias()
    rpt = _rpt.alias()
    roots = (
        select(member.c.root_provider_id)
        .select_from(rpt.join(member, member.c.id == rpt.c.resource_provider_id))
        .where(rpt.c.trait_id.in_(int_list(name)))
    )
    return root.in_(roots)


def anchor_ok(anchor: ColumnElement[Any], shape: Shape) -> list[ColumnElement[bool]]:
    conditions = [
        has_any_trait(anchor, [int_param(f"root_required{j}")])
        for j in range(shape.root_required)
    ]
    if shape.root_forbidden:
        conditions.append(~has_any_trait(anchor, int_list("root_forbidden")))
    return conditions


def in_window(anchor: ColumnElement[Any], shape: Shape) -> list[ColumnElement[bool]]:
    if not shape.window:
        return []
    return [anchor > int_param("after"), anchor <= int_param("upto")]


def shared_with(joined: Any, provider_id: ColumnElement[Any]) -> tuple[Any, ColumnElement[Any]]:
    """Join the roots of every provider in an aggregate of the provider: its anchors."""
    mine = _rpa.alias()
    theirs = _rpa.alias()
    member = _rp.alias()
    joined = (
        joined.join(mine, mine.c.resource_provider_id == provider_id)
        .join(theirs, theirs.c.aggregate_id == mine.c.aggregate_id)
        .join(member, member.c.id == theirs.c.resource_provider_id)
    )
    return joined, member.c.root_provider_id


def required_bits(provider: ColumnElement[Any], sets: int, pre: str) -> ColumnElement[Any]:
    if not sets:
        return literal_column("0")
    terms = [
        case(
            (has_any_trait(provider, int_list(f"{pre}required{j}")), literal_column(str(1 << j))),
            else_=literal_column("0"),
        )
        for j in range(sets)
    ]
    return reduce(lambda left, right: left + right, terms)


def own_conditions(
    provider: Any, shape: Shape, required: range, pre: str
) -> list[ColumnElement[bool]]:
    """Required sets in ``required``, no forbidden trait, no forbidden aggregate."""
    conditions = [has_any_trait(provider.c.id, int_list(f"{pre}required{j}")) for j in required]
    if shape.forbidden:
        conditions.append(~has_any_trait(provider.c.id, int_list(f"{pre}forbidden")))
    if shape.forbidden_aggs:
        conditions.append(~in_any_aggregate(provider.c.id, int_list(f"{pre}forbidden_aggs")))
    return conditions
