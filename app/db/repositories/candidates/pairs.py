"""The usable (provider, anchor) pairs of every request group, in one statement.

Shapes of the rows:

* unsuffixed group, one row per usable (provider, anchor):
  ``(provider_id, provider_root_id, anchor_id, class_bits, trait_bits)``; bit
  ``k`` of ``class_bits``: the provider can serve the ``k``-th class; bit
  ``j`` of ``trait_bits``: it has a trait of the ``j``-th required any-of set
  (traits count over all the providers a candidate takes from);
* suffixed group, one row per (provider, anchor): ``(provider_id,
  provider_root_id, anchor_id)``: the provider alone satisfies the group.

A sharing provider (trait ``MISC_SHARES_VIA_AGGREGATE``) is paired with its own
root and with every root of a provider that shares an aggregate with it.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import in_list_parameter
from app.db.repositories.candidates.predicates import (
    aggregates_ok,
    anchor_ok,
    fit_conditions,
    in_any_aggregate,
    in_window,
    own_conditions,
    required_bits,
    shared_with,
    tree_has_any_trait,
)
from app.db.repositories.candidates.shapes import (
    AnchorFilter,
    GroupQuery,
    Shape,
    Sharing,
    Window,
    params_of,
    shape_of,
)
from app.db.repositories.candidates.statements import cached, fetch_all, int_list, int_param

_rp = models.resource_providers
_inv = models.inventories
_rpt = models.resource_provider_traits


# -- unsuffixed group -------------------------------------------------------------------

def _unsuffixed_statement(shape: Shape, pre: str) -> Any:
    single_class = shape.classes == 1

    def usable(extra: Callable[[Any], list[ColumnElement[bool]]], windowed: bool) -> Select[Any]:
        """Providers with their class bits: one row per provider, not per class.

        Over every anchor the search starts from the inventories of the classes
        (class index); within a window it starts from the window's providers
        (root index) and looks their inventories up one by one (unique index).
        """
        provider = _rp.alias()
        inv = _inv.alias()
        class_bits: Any = func.sum(
            case(
                *(
                    (
                        and_(
                            inv.c.resource_class_id == int_param(f"{pre}rc{k}"),
                            *fit_conditions(inv, int_param(f"{pre}amount{k}")),
                        ),
                        literal_column(str(1 << k)),
                    )
                    for k in range(shape.classes)
                ),
                else_=literal_column("0"),
            )
        )
        trait_bits: ColumnElement[Any]
        if single_class:
            trait_bits = literal_column(str((1 << shape.required) - 1))
            required = range(shape.required)
        else:
            trait_bits = required_bits(provider.c.id, shape.required, pre)
            required = range(0)
        root = provider.c.root_provider_id
        conditions = [*own_conditions(provider, shape, required, pre), *extra(provider)]
        if windowed:
            class_bits = (
                select(class_bits)
                .where(
                    inv.c.resource_provider_id == provider.c.id,
                    inv.c.resource_class_id.in_(int_list(f"{pre}rcs")),
                )
                .scalar_subquery()
            )
            return select(
                provider.c.id.label("provider"),
                root.label("root"),
                class_bits.label("classes"),
                trait_bits.label("traits"),
            ).where(*conditions)
        return (
            select(
                provider.c.id.label("provider"),
                root.label("root"),
                class_bits.label("classes"),
                trait_bits.label("traits"),
            )
            .select_from(provider.join(inv, inv.c.resource_provider_id == provider.c.id))
            .where(inv.c.resource_class_id.in_(int_list(f"{pre}rcs")), *conditions)
            .group_by(provider.c.id, root)
        )

    def in_trees(provider: Any) -> list[ColumnElement[bool]]:
        root = provider.c.root_provider_id
        tree: list[ColumnElement[bool]] = []
        if shape.in_tree:
            tree.append(root == int_param(f"{pre}in_tree"))
        if shape.member_of:
            tree.append(
                or_(
                    aggregates_ok(provider.c.id, shape.member_of, pre),
                    aggregates_ok(root, shape.member_of, pre),
                )
            )
        if shape.forbidden_aggs:
            tree.append(~in_any_aggregate(root, int_list(f"{pre}forbidden_aggs")))
        tree += [tree_has_any_trait(root, f"{pre}required{j}") for j in shape.anchor_needs]
        return [*tree, *anchor_ok(root, shape), *in_window(root, shape)]

    # Rows whose class bits are 0 or null (nothing fits) are left for the caller
    # to skip: filtering on the summed bits here would evaluate every fit twice.
    tree_rows = usable(in_trees, shape.window).subquery()
    selects: list[Select[Any]] = [
        select(
            tree_rows.c.provider,
            tree_rows.c.root,
            tree_rows.c.root.label("anchor"),
            tree_rows.c.classes,
            tree_rows.c.traits,
        )
    ]
    if shape.sharing and not shape.in_tree:

        def shared(provider: Any) -> list[ColumnElement[bool]]:
            own = [in_list_parameter(shape.dialect, provider.c.id, "sharing")]
            if shape.member_of:
                own.append(aggregates_ok(provider.c.id, shape.member_of, pre))
            return own

        offers = usable(shared, False).subquery()
        joined, anchor = shared_with(offers, offers.c.provider)
        pairs = []
        if shape.forbidden_aggs:
            pairs.append(~in_any_aggregate(anchor, int_list(f"{pre}forbidden_aggs")))
        pairs += [tree_has_any_trait(anchor, f"{pre}required{j}") for j in shape.anchor_needs]
        selects.append(
            select(
                offers.c.provider,
                offers.c.root,
                anchor.label("anchor"),
                offers.c.classes,
                offers.c.traits,
            )
            .select_from(joined)
            .where(*pairs, *anchor_ok(anchor, shape), *in_window(anchor, shape))
        )
    return union(*selects) if len(selects) > 1 else selects[0]


# -- suffixed groups ---------------------------------------------------------------------

def _single_provider_statement(shape: Shape, pre: str) -> Any:
    """One provider alone satisfying a suffixed group, paired with its anchors.

    A resource-less group (1.36) selects providers through a required trait or
    aggregate (the caller skips one without either) and its ``in_tree`` is not
    applied (the reference's behaviour).
    """

    def provider_conditions() -> tuple[Any, Any, list[ColumnElement[bool]]]:
        provider = _rp.alias()
        joined: Any = provider
        conditions: list[ColumnElement[bool]] = []
        for k in range(shape.classes):
            inv = _inv.alias()
            joined = joined.join(
                inv,
                and_(
                    inv.c.resource_provider_id == provider.c.id,
                    inv.c.resource_class_id == int_param(f"{pre}rc{k}"),
                ),
            )
            conditions += fit_conditions(inv, int_param(f"{pre}amount{k}"))
        required = range(shape.required)
        if not shape.classes and shape.required:
            # Drive the search from the trait index.
            rpt = _rpt.alias()
            conditions.append(
                provider.c.id.in_(
                    select(rpt.c.resource_provider_id).where(
                        rpt.c.trait_id.in_(int_list(f"{pre}required0"))
                    )
                )
            )
            required = range(1, shape.required)
        if shape.classes and shape.in_tree:
            conditions.append(provider.c.root_provider_id == int_param(f"{pre}in_tree"))
        conditions += own_conditions(provider, shape, required, pre)
        if shape.member_of:
            conditions.append(aggregates_ok(provider.c.id, shape.member_of, pre))
        return provider, joined, conditions

    provider, joined, conditions = provider_conditions()
    root = provider.c.root_provider_id
    selects: list[Select[Any]] = [
        select(provider.c.id.label("provider"), root.label("root"), root.label("anchor"))
        .select_from(joined)
        .where(*conditions, *anchor_ok(root, shape), *in_window(root, shape))
    ]
    if shape.sharing:
        provider, joined, conditions = provider_conditions()
        joined, anchor = shared_with(joined, provider.c.id)
        selects.append(
            select(
                provider.c.id.label("provider"),
                provider.c.root_provider_id.label("root"),
                anchor.label("anchor"),
            )
            .select_from(joined)
            .where(
                in_list_parameter(shape.dialect, provider.c.id, "sharing"),
                *conditions,
                *anchor_ok(anchor, shape),
                *in_window(anchor, shape),
            )
        )
    return union(*selects) if len(selects) > 1 else selects[0]


def _rows_statement(shapes: tuple[Shape, ...]) -> Any:
    """The usable pairs of every group in one statement, tagged with the group's position."""
    none: ColumnElement[Any] = cast(literal_column("NULL"), Integer)
    selects: list[Select[Any]] = []
    for position, shape in enumerate(shapes):
        if shape.nothing:
            continue
        pre = f"g{position}_"
        tag: ColumnElement[Any] = literal_column(str(position))
        if shape.unsuffixed:
            rows = _unsuffixed_statement(shape, pre).subquery()
            classes, traits = rows.c.classes, rows.c.traits
        else:
            rows = _single_provider_statement(shape, pre).subquery()
            classes = traits = none
        selects.append(
            select(tag, rows.c.provider, rows.c.root, rows.c.anchor, classes, traits)
        )
    return union_all(*selects) if len(selects) > 1 else selects[0]


async def group_rows(
    conn: AsyncConnection,
    groups: Sequence[GroupQuery],
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
) -> Sequence[tuple[int, int, int, int, int | None, int | None]]:
    """(group position, provider, provider root, anchor, class bits, trait bits) rows.

    The unsuffixed group: a pair (X, A) is usable when X has room for a class
    (bit ``k`` of the class bits: the ``k``-th class), has no forbidden trait, X
    or the anchor A satisfies ``member_of`` ("an aggregate on the root spans
    the tree"; a sharing X must satisfy it itself), neither is in a forbidden
    aggregate, and A passes ``root_required``. With ``in_tree`` only the
    providers of that tree are used. Required traits count over all the
    providers a candidate takes from, so they are checked per combination (bit
    ``j`` of the trait bits: the provider has a trait of the ``j``-th required
    set), except when the group asks for one class: then its one provider must
    have them all, a filter here. An anchor also needs, for each required set,
    some provider of its tree with one of those traits, unless a sharing
    provider might bring it. Rows whose class bits are 0 or null mean nothing.

    A suffixed group: the provider alone satisfies the group; a sharing
    provider also serves every anchor it shares an aggregate with; a
    resource-less group without a required trait or aggregate matches nothing.
    Class and trait bits are null.
    """
    shapes = []
    params: dict[str, Any] = {}
    for position, group in enumerate(groups):
        needs: tuple[int, ...] = ()
        if not group.same_provider and len(group.amounts) > 1:
            needs = tuple(
                j for j, ids in enumerate(group.required) if not sharing.traits.intersection(ids)
            )
        shapes.append(shape_of(conn, group, anchors, window, sharing, needs))
        params.update(params_of(conn, group, anchors, window, sharing, f"g{position}_"))
    if all(shape.nothing for shape in shapes):
        return []
    key = tuple(shapes)
    statement = cached(("rows", key), lambda: _rows_statement(key))
    return await fetch_all(conn, statement, params)
