"""SQL of ``GET /allocation_candidates``: set-based filtering over indexed columns.

Every filter a provider can be judged by on its own is evaluated in the
database: capacity per (provider, class) against summed usage, min/max unit
and step size, required and forbidden traits, aggregate membership (own or,
for the unsuffixed group, the tree root's), forbidden aggregates, ``in_tree``
and the anchor roots' ``root_required`` traits. The database returns only the
(provider, anchor) pairs that survive, optionally restricted to a window of
anchor ids, plus small lookups (room left for stacked classes, parents,
provider summaries). Combining pairs into candidates is left to Python.

Statements are built once per *shape* (how many classes, trait sets,
aggregate sets, which filters are present...) and cached; every value travels
as a bind parameter, id lists as one array (PostgreSQL) or JSON (SQLite)
parameter. Building SQLAlchemy expressions costs more than running them.

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

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    union,
    union_all,
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


@dataclass
class Sharing:
    """The sharing providers of the cloud (usually none) and every trait they have."""

    ids: list[int] = field(default_factory=list)
    traits: set[int] = field(default_factory=set)


# Anchors in ``(after, upto]``; ``None`` is every anchor.
Window = tuple[int, int] | None


# -- statement cache and parameters --------------------------------------------------

_STATEMENTS: dict[tuple[Any, ...], Any] = {}
MAX_STATEMENTS = 1024


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    statement = _STATEMENTS.get(key)
    if statement is None:
        if len(_STATEMENTS) >= MAX_STATEMENTS:
            _STATEMENTS.clear()
        statement = _STATEMENTS[key] = build()
    return statement


def _value(name: str) -> BindParameter[int]:
    return bindparam(name, type_=Integer)


def _values(name: str) -> BindParameter[Any]:
    """A short list of ids (traits, aggregates, classes): ``IN (...)`` expanded."""
    return bindparam(name, type_=Integer, expanding=True)


def _in_id_set(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """``column`` in a list of ids of any length, passed as one parameter.

    As a subquery over the unnested list: a semi-join the planner can hash.
    (``= ANY(array parameter)`` is compared element by element, row by row, in
    the generic plans PostgreSQL switches prepared statements to.)
    """
    if dialect == "postgresql":
        return column.in_(  # type: ignore[no-any-return]
            select(func.unnest(bindparam(name, type_=ARRAY(Integer))))
        )
    each = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


def _id_set(dialect: str, ids: Iterable[int]) -> Any:
    values = sorted(set(ids))
    return values if dialect == "postgresql" else json.dumps(values)


# -- predicates ------------------------------------------------------------------

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


def _fit_conditions(inv: Any, amount: Any) -> list[ColumnElement[bool]]:
    """``amount`` fits the inventory row ``inv`` (spec "fit").

    ``used + amount <= (total - reserved) * allocation_ratio`` (unrounded),
    within min/max unit and a multiple of the step size; ``used`` sums the
    allocations through the (provider, class, used) index.
    """
    return [
        _used(inv) + amount <= (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio,
        inv.c.min_unit <= amount,
        inv.c.max_unit >= amount,
        amount % inv.c.step_size == 0,
    ]


def _has_any_trait(provider: ColumnElement[Any], trait_ids: Any) -> ColumnElement[bool]:
    rpt = _rpt.alias()
    return exists().where(rpt.c.resource_provider_id == provider, rpt.c.trait_id.in_(trait_ids))


def _in_any_aggregate(provider: ColumnElement[Any], agg_ids: Any) -> ColumnElement[bool]:
    rpa = _rpa.alias()
    return exists().where(
        rpa.c.resource_provider_id == provider, rpa.c.aggregate_id.in_(agg_ids)
    )


def _aggregates_ok(provider: ColumnElement[Any], sets: int, pre: str) -> ColumnElement[bool]:
    """The provider itself is in an aggregate of every any-of set ``member{j}``."""
    return and_(
        true(), *(_in_any_aggregate(provider, _values(f"{pre}member{j}")) for j in range(sets))
    )


def _tree_has_any_trait(root: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """Some provider of the tree of ``root`` has one of the traits (set computed once)."""
    member = _rp.alias()
    rpt = _rpt.alias()
    roots = (
        select(member.c.root_provider_id)
        .select_from(rpt.join(member, member.c.id == rpt.c.resource_provider_id))
        .where(rpt.c.trait_id.in_(_values(name)))
    )
    return root.in_(roots)


def _anchor_ok(anchor: ColumnElement[Any], shape: "_Shape") -> list[ColumnElement[bool]]:
    conditions = [
        _has_any_trait(anchor, [_value(f"root_required{j}")])
        for j in range(shape.root_required)
    ]
    if shape.root_forbidden:
        conditions.append(~_has_any_trait(anchor, _values("root_forbidden")))
    return conditions


def _in_window(anchor: ColumnElement[Any], shape: "_Shape") -> list[ColumnElement[bool]]:
    if not shape.window:
        return []
    return [anchor > _value("after"), anchor <= _value("upto")]


def _shared_with(joined: Any, provider_id: ColumnElement[Any]) -> tuple[Any, ColumnElement[Any]]:
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


def _trait_bits(provider: ColumnElement[Any], sets: int, pre: str) -> ColumnElement[Any]:
    if not sets:
        return literal_column("0")
    terms = [
        case(
            (_has_any_trait(provider, _values(f"{pre}required{j}")), literal_column(str(1 << j))),
            else_=literal_column("0"),
        )
        for j in range(sets)
    ]
    return reduce(lambda left, right: left + right, terms)


# -- group shapes ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Shape:
    """What a group's statement looks like; values go in parameters."""

    dialect: str
    unsuffixed: bool
    # a resource-less group without a required trait or aggregate: matches nothing
    nothing: bool
    classes: int
    required: int
    forbidden: bool
    member_of: int
    forbidden_aggs: bool
    in_tree: bool
    root_required: int
    root_forbidden: bool
    window: bool
    sharing: bool
    # unsuffixed group: required sets an anchor's tree must offer
    anchor_needs: tuple[int, ...] = ()


def _shape(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
    anchor_needs: tuple[int, ...] = (),
) -> _Shape:
    return _Shape(
        dialect=conn.dialect.name,
        unsuffixed=not group.same_provider,
        nothing=group.resourceless and not (group.required or group.member_of),
        classes=len(group.amounts),
        required=len(group.required),
        forbidden=bool(group.forbidden),
        member_of=len(group.member_of),
        forbidden_aggs=bool(group.forbidden_aggs),
        in_tree=group.in_tree_root is not None,
        root_required=len(anchors.required),
        root_forbidden=bool(anchors.forbidden),
        window=window is not None,
        sharing=bool(sharing.ids),
        anchor_needs=anchor_needs,
    )


def _params(
    conn: AsyncConnection,
    group: GroupQuery,
    anchors: AnchorFilter,
    window: Window,
    sharing: Sharing,
    pre: str = "",
) -> dict[str, Any]:
    """Values of a group's statement: the group's own under ``pre``, the rest shared."""
    params: dict[str, Any] = {}
    for k, (rc, amount) in enumerate(group.amounts):
        params[f"{pre}rc{k}"] = rc
        params[f"{pre}amount{k}"] = amount
    params[f"{pre}rcs"] = [rc for rc, _ in group.amounts]
    for j, ids in enumerate(group.required):
        params[f"{pre}required{j}"] = ids
    params[f"{pre}forbidden"] = group.forbidden
    for j, ids in enumerate(group.member_of):
        params[f"{pre}member{j}"] = ids
    params[f"{pre}forbidden_aggs"] = group.forbidden_aggs
    params[f"{pre}in_tree"] = group.in_tree_root
    for j, trait in enumerate(anchors.required):
        params[f"root_required{j}"] = trait
    params["root_forbidden"] = anchors.forbidden
    if window is not None:
        params["after"], params["upto"] = window
    if sharing.ids:
        params["sharing"] = _id_set(conn.dialect.name, sharing.ids)
    return params


def _own_conditions(
    provider: Any, shape: _Shape, required: range, pre: str
) -> list[ColumnElement[bool]]:
    """Required sets in ``required``, no forbidden trait, no forbidden aggregate."""
    conditions = [_has_any_trait(provider.c.id, _values(f"{pre}required{j}")) for j in required]
    if shape.forbidden:
        conditions.append(~_has_any_trait(provider.c.id, _values(f"{pre}forbidden")))
    if shape.forbidden_aggs:
        conditions.append(~_in_any_aggregate(provider.c.id, _values(f"{pre}forbidden_aggs")))
    return conditions


async def _rows(conn: AsyncConnection, statement: Any, params: Any = None) -> Sequence[Any]:
    """Every row at once: the driver's bulk path, not a fetch per row."""
    result = await conn.execute(statement, params)
    return result.all()


# -- unsuffixed group -------------------------------------------------------------------

def _unsuffixed_statement(shape: _Shape, pre: str) -> Any:
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
                            inv.c.resource_class_id == _value(f"{pre}rc{k}"),
                            *_fit_conditions(inv, _value(f"{pre}amount{k}")),
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
            trait_bits = _trait_bits(provider.c.id, shape.required, pre)
            required = range(0)
        root = provider.c.root_provider_id
        conditions = [*_own_conditions(provider, shape, required, pre), *extra(provider)]
        if windowed:
            class_bits = (
                select(class_bits)
                .where(
                    inv.c.resource_provider_id == provider.c.id,
                    inv.c.resource_class_id.in_(_values(f"{pre}rcs")),
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
            .where(inv.c.resource_class_id.in_(_values(f"{pre}rcs")), *conditions)
            .group_by(provider.c.id, root)
        )

    def in_trees(provider: Any) -> list[ColumnElement[bool]]:
        root = provider.c.root_provider_id
        tree: list[ColumnElement[bool]] = []
        if shape.in_tree:
            tree.append(root == _value(f"{pre}in_tree"))
        if shape.member_of:
            tree.append(
                or_(
                    _aggregates_ok(provider.c.id, shape.member_of, pre),
                    _aggregates_ok(root, shape.member_of, pre),
                )
            )
        if shape.forbidden_aggs:
            tree.append(~_in_any_aggregate(root, _values(f"{pre}forbidden_aggs")))
        tree += [_tree_has_any_trait(root, f"{pre}required{j}") for j in shape.anchor_needs]
        return [*tree, *_anchor_ok(root, shape), *_in_window(root, shape)]

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
            own = [_in_id_set(shape.dialect, provider.c.id, "sharing")]
            if shape.member_of:
                own.append(_aggregates_ok(provider.c.id, shape.member_of, pre))
            return own

        offers = usable(shared, False).subquery()
        joined, anchor = _shared_with(offers, offers.c.provider)
        pairs = []
        if shape.forbidden_aggs:
            pairs.append(~_in_any_aggregate(anchor, _values(f"{pre}forbidden_aggs")))
        pairs += [_tree_has_any_trait(anchor, f"{pre}required{j}") for j in shape.anchor_needs]
        selects.append(
            select(
                offers.c.provider,
                offers.c.root,
                anchor.label("anchor"),
                offers.c.classes,
                offers.c.traits,
            )
            .select_from(joined)
            .where(*pairs, *_anchor_ok(anchor, shape), *_in_window(anchor, shape))
        )
    return union(*selects) if len(selects) > 1 else selects[0]


# -- suffixed groups ---------------------------------------------------------------------

def _single_provider_statement(shape: _Shape, pre: str) -> Any:
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
                    inv.c.resource_class_id == _value(f"{pre}rc{k}"),
                ),
            )
            conditions += _fit_conditions(inv, _value(f"{pre}amount{k}"))
        required = range(shape.required)
        if not shape.classes and shape.required:
            # Drive the search from the trait index.
            rpt = _rpt.alias()
            conditions.append(
                provider.c.id.in_(
                    select(rpt.c.resource_provider_id).where(
                        rpt.c.trait_id.in_(_values(f"{pre}required0"))
                    )
                )
            )
            required = range(1, shape.required)
        if shape.classes and shape.in_tree:
            conditions.append(provider.c.root_provider_id == _value(f"{pre}in_tree"))
        conditions += _own_conditions(provider, shape, required, pre)
        if shape.member_of:
            conditions.append(_aggregates_ok(provider.c.id, shape.member_of, pre))
        return provider, joined, conditions

    provider, joined, conditions = provider_conditions()
    root = provider.c.root_provider_id
    selects: list[Select[Any]] = [
        select(provider.c.id.label("provider"), root.label("root"), root.label("anchor"))
        .select_from(joined)
        .where(*conditions, *_anchor_ok(root, shape), *_in_window(root, shape))
    ]
    if shape.sharing:
        provider, joined, conditions = provider_conditions()
        joined, anchor = _shared_with(joined, provider.c.id)
        selects.append(
            select(
                provider.c.id.label("provider"),
                provider.c.root_provider_id.label("root"),
                anchor.label("anchor"),
            )
            .select_from(joined)
            .where(
                _in_id_set(shape.dialect, provider.c.id, "sharing"),
                *conditions,
                *_anchor_ok(anchor, shape),
                *_in_window(anchor, shape),
            )
        )
    return union(*selects) if len(selects) > 1 else selects[0]


def _rows_statement(shapes: tuple[_Shape, ...]) -> Any:
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
        shapes.append(_shape(conn, group, anchors, window, sharing, needs))
        params.update(_params(conn, group, anchors, window, sharing, f"g{position}_"))
    if all(shape.nothing for shape in shapes):
        return []
    key = tuple(shapes)
    statement = _cached(("rows", key), lambda: _rows_statement(key))
    return await _rows(conn, statement, params)


# -- name resolution -----------------------------------------------------------------

@dataclass
class Resolved:
    """Every name of a request, resolved in one round trip."""

    class_ids: dict[str, int] = field(default_factory=dict)  # every class
    class_names: dict[int, str] = field(default_factory=dict)
    trait_ids: dict[str, int] = field(default_factory=dict)  # the named ones that exist
    aggregate_ids: dict[str, int] = field(default_factory=dict)
    provider_roots: dict[str, int] = field(default_factory=dict)  # provider uuid -> root id
    sharing: Sharing = field(default_factory=Sharing)
    max_provider_id: int = 0


def _text_set(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return column.in_(  # type: ignore[no-any-return]
            select(func.unnest(bindparam(name, type_=ARRAY(String))))
        )
    each = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


def _text_values(dialect: str, values: Iterable[str]) -> Any:
    ordered = sorted(set(values))
    return ordered if dialect == "postgresql" else json.dumps(ordered)


def _resolve_statement(dialect: str) -> Any:
    """(kind, key, id, extra) rows: c = class, t = trait, a = aggregate, p = provider
    (extra: its root), s = a trait of a sharing provider (id: provider), m = max id."""

    def row(kind: str, key: Any, id_: Any, extra: Any) -> list[Any]:
        return [
            literal_column(f"'{kind}'", String).label("kind"),
            cast(key, String).label("key"),
            cast(id_, Integer).label("id"),
            cast(extra, Integer).label("extra"),
        ]

    none: ColumnElement[Any] = literal_column("NULL")
    marked = _rpt.alias()
    shared = _rpt.alias()
    sharing_trait = _traits.alias()
    return union_all(
        select(*row("c", _rc.c.name, _rc.c.id, none)),
        select(*row("t", _traits.c.name, _traits.c.id, none)).where(
            _text_set(dialect, _traits.c.name, "traits")
        ),
        select(*row("a", _agg.c.uuid, _agg.c.id, none)).where(
            _text_set(dialect, _agg.c.uuid, "aggregates")
        ),
        select(*row("p", _rp.c.uuid, _rp.c.id, _rp.c.root_provider_id)).where(
            _text_set(dialect, _rp.c.uuid, "providers")
        ),
        select(*row("s", none, shared.c.resource_provider_id, shared.c.trait_id)).where(
            shared.c.resource_provider_id.in_(
                select(marked.c.resource_provider_id)
                .select_from(
                    marked.join(sharing_trait, sharing_trait.c.id == marked.c.trait_id)
                )
                .where(sharing_trait.c.name == SHARING_TRAIT)
            )
        ),
        select(*row("m", none, func.max(_rp.c.id), none)),
    )


async def resolve(
    conn: AsyncConnection,
    *,
    traits: Iterable[str],
    aggregates: Iterable[str],
    providers: Iterable[str],
) -> Resolved:
    dialect = conn.dialect.name
    statement = _cached(("resolve", dialect), lambda: _resolve_statement(dialect))
    params = {
        "traits": _text_values(dialect, traits),
        "aggregates": _text_values(dialect, aggregates),
        "providers": _text_values(dialect, providers),
    }
    out = Resolved()
    sharing: set[int] = set()
    for kind, key, id_, extra in await _rows(conn, statement, params):
        if kind == "c":
            out.class_ids[key] = id_
            out.class_names[id_] = key
        elif kind == "t":
            out.trait_ids[key] = id_
        elif kind == "a":
            out.aggregate_ids[key] = id_
        elif kind == "p":
            out.provider_roots[key] = extra
        elif kind == "s":
            sharing.add(id_)
            out.sharing.traits.add(extra)
        else:
            out.max_provider_id = id_ or 0
    out.sharing.ids = sorted(sharing)
    return out




# -- windows, existence checks --------------------------------------------------------

async def any_root_matches(conn: AsyncConnection, anchors: AnchorFilter) -> bool:
    shape = _shape(conn, GroupQuery(0, "", []), anchors, None, Sharing())
    root = _rp.alias()
    statement = (
        select(root.c.id)
        .where(root.c.parent_provider_id.is_(None), *_anchor_ok(root.c.id, shape))
        .limit(1)
    )
    params = _params(conn, GroupQuery(0, "", []), anchors, None, Sharing())
    return (await conn.execute(statement, params)).first() is not None


async def any_provider_in_aggregates(
    conn: AsyncConnection, member_of: list[list[int]]
) -> bool:
    provider = _rp.alias()
    statement = (
        select(provider.c.id).where(_aggregates_ok(provider.c.id, len(member_of), "")).limit(1)
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
            _used(inv),
        ).where(
            _in_id_set(dialect, inv.c.resource_provider_id, "providers"),
            inv.c.resource_class_id.in_(_values("rcs")),
        )

    rows = await _rows(
        conn,
        _cached(("room", dialect), build),
        {"providers": _id_set(dialect, provider_ids), "rcs": list(rc_ids)},
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
    statement = _cached(
        ("parents", dialect),
        lambda: select(_rp.c.id, _rp.c.parent_provider_id).where(
            _in_id_set(dialect, _rp.c.root_provider_id, "roots")
        ),
    )
    rows = await _rows(conn, statement, {"roots": _id_set(dialect, root_ids)})
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
    provider = _rp.alias()
    selected = _in_id_set(
        dialect, provider.c.root_provider_id if whole_trees else provider.c.id, "ids"
    )
    providers = select(
        *row(
            0,
            provider.c.id,
            provider.c.parent_provider_id,
            provider.c.root_provider_id,
            none,
            none,
            provider.c.uuid,
        )
    ).where(selected)
    inv = _inv.alias()
    # Usage: one grouped pass over the allocations of the providers selected.
    alloc = _alloc.alias()
    holder = _rp.alias()
    usage = (
        select(
            alloc.c.resource_provider_id.label("provider"),
            alloc.c.resource_class_id.label("rc"),
            func.sum(alloc.c.used).label("used"),
        )
        .select_from(alloc.join(holder, holder.c.id == alloc.c.resource_provider_id))
        .where(
            _in_id_set(dialect, holder.c.root_provider_id if whole_trees else holder.c.id, "ids")
        )
        .group_by(alloc.c.resource_provider_id, alloc.c.resource_class_id)
        .subquery()
    )
    inventories = (
        select(
            *row(
                1,
                inv.c.resource_provider_id,
                inv.c.resource_class_id,
                inv.c.total - inv.c.reserved,
                func.coalesce(usage.c.used, 0),
                inv.c.allocation_ratio,
                none,
            )
        )
        .select_from(
            inv.join(provider, provider.c.id == inv.c.resource_provider_id).outerjoin(
                usage,
                and_(
                    usage.c.provider == inv.c.resource_provider_id,
                    usage.c.rc == inv.c.resource_class_id,
                ),
            )
        )
        .where(selected)
    )
    if some_classes:
        inventories = inventories.where(inv.c.resource_class_id.in_(_values("rcs")))
    rpt = _rpt.alias()
    traits = (
        select(
            *row(2, rpt.c.resource_provider_id, rpt.c.trait_id, none, none, none, _traits.c.name)
        )
        .select_from(
            rpt.join(provider, provider.c.id == rpt.c.resource_provider_id).join(
                _traits, _traits.c.id == rpt.c.trait_id
            )
        )
        .where(selected)
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

    statement = _cached(("summaries", dialect, whole_trees, rc_ids is not None, with_traits), build)
    params: dict[str, Any] = {"ids": _id_set(dialect, ids)}
    if rc_ids is not None:
        params["rcs"] = list(rc_ids)
    out = SummaryRows()
    providers = out.providers
    inventories = out.inventories
    traits: dict[int, list[tuple[int, str]]] = {}
    for kind, id_, a, b, c, ratio, text in await _rows(conn, statement, params):
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
    statement = _cached(
        ("uuids", dialect),
        lambda: select(_rp.c.id, _rp.c.uuid).where(_in_id_set(dialect, _rp.c.id, "ids")),
    )
    rows = await _rows(conn, statement, {"ids": _id_set(dialect, ids)})
    return {id_: uuid for id_, uuid in rows}
