"""Resource providers: the filtered listing and the statements of create, update, delete.

Every filter of ``GET /resource_providers`` is a set-based condition on the
one provider query (``EXISTS`` / ``IN`` subqueries), so a listing is a single
SELECT. The rules of creating, re-parenting and deleting (and their order) are
the resource providers service's.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.candidates.statements import cached, int_list, int_param
from app.db.repositories.providers_core import provider_from_row, provider_select
from app.exceptions import ProviderRenameConflict
from app.query import AggregateFilter, TraitFilter
from app.records import ProviderRow

_rp = models.resource_providers
_inv = models.inventories
_alloc = models.allocations
_rpt = models.resource_provider_traits
_rpa = models.resource_provider_aggregates
_agg = models.placement_aggregates
_traits = models.traits

# Inventory integers never exceed this, so larger amounts can never fit.
MAX_AMOUNT = 0x7FFFFFFF


class NoSuchTraits(Exception):
    """Unknown trait names (sorted); the service words the error."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


async def trait_ids(conn: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    """Ids of the named traits; ``NoSuchTraits`` names every unknown one (sorted)."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = await conn.execute(
        select(_traits.c.name, _traits.c.id).where(_traits.c.name.in_(sorted(wanted)))
    )
    found = {name: id_ for name, id_ in rows}
    missing = sorted(wanted - found.keys())
    if missing:
        raise NoSuchTraits(missing)
    return found


async def trait_filter_ids(
    conn: AsyncConnection, traits: TraitFilter
) -> tuple[list[set[int]], set[int]]:
    """Resolve a ``TraitFilter`` to ids: (any-of id sets, forbidden ids).

    Required names are checked first, so an unknown required trait is the
    one reported when both kinds are unknown.
    """
    required_names = set().union(*traits.required)
    ids = await trait_ids(conn, required_names)
    ids.update(await trait_ids(conn, traits.forbidden - ids.keys()))
    required = [{ids[name] for name in group} for group in traits.required]
    forbidden = {ids[name] for name in traits.forbidden}
    return required, forbidden


@dataclass
class ProviderFilters:
    """The filters of ``GET /resource_providers``; all are ANDed."""

    name: str | None = None
    uuid: str | None = None
    in_tree: str | None = None
    resources: dict[int, int] = field(default_factory=dict)  # class id -> amount
    required_traits: list[set[int]] = field(default_factory=list)  # any-of id sets
    forbidden_traits: set[int] = field(default_factory=set)
    aggregates: AggregateFilter = field(default_factory=AggregateFilter)


def has_capacity(
    provider_id: ColumnElement[int], class_id: ColumnElement[int], amount: ColumnElement[int]
) -> ColumnElement[bool]:
    """The provider alone can take ``amount`` of the class (spec §4.2 formula).

    Written as ``id IN (fitting inventory rows)`` with the class's usage grouped
    once, not as a correlated EXISTS: the planner can then hash it whatever the
    table statistics say (a fresh, never-analyzed database included).
    """
    inv = _inv.alias("inv")
    usage = (
        select(
            _alloc.c.resource_provider_id.label("provider_id"),
            func.sum(_alloc.c.used).label("used"),
        )
        .where(_alloc.c.resource_class_id == class_id)
        .group_by(_alloc.c.resource_provider_id)
        .subquery("usage")
    )
    fitting = (
        select(inv.c.resource_provider_id)
        .select_from(inv.outerjoin(usage, usage.c.provider_id == inv.c.resource_provider_id))
        .where(
            inv.c.resource_class_id == class_id,
            inv.c.min_unit <= amount,
            inv.c.max_unit >= amount,
            amount.op("%")(inv.c.step_size) == 0,
            (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio
            >= func.coalesce(usage.c.used, 0) + amount,
        )
    )
    return provider_id.in_(fitting)


def has_any_trait(provider_id: ColumnElement[int], ids: BindParameter[Any]) -> ColumnElement[bool]:
    rpt = _rpt.alias("rpt")
    return exists(
        select(1).select_from(rpt).where(
            rpt.c.resource_provider_id == provider_id, rpt.c.trait_id.in_(ids)
        )
    )


def in_any_aggregate(
    provider_id: ColumnElement[int], uuids: BindParameter[Any]
) -> ColumnElement[bool]:
    rpa = _rpa.alias("rpa")
    agg = _agg.alias("agg")
    return exists(
        select(1)
        .select_from(rpa.join(agg, agg.c.id == rpa.c.aggregate_id))
        .where(rpa.c.resource_provider_id == provider_id, agg.c.uuid.in_(uuids))
    )


# Which filters a listing has and how many of each: one statement per shape,
# built once (building SQLAlchemy expressions costs more than running them, and
# leaves reference cycles for the collector), every value a bind parameter.
_Shape = tuple[bool, bool, bool, int, bool, int, bool, int]


def _shape(filters: ProviderFilters) -> _Shape:
    return (
        bool(filters.name), bool(filters.uuid), bool(filters.in_tree),  # "name=": no filter
        len(filters.required_traits), bool(filters.forbidden_traits),
        len(filters.aggregates.required), bool(filters.aggregates.forbidden),
        len(filters.resources),
    )


def _values(filters: ProviderFilters) -> dict[str, Any]:
    values: dict[str, Any] = {"name": filters.name, "uuid": filters.uuid, "tree": filters.in_tree}
    for j, ids in enumerate(filters.required_traits):
        values[f"traits{j}"] = sorted(ids)
    values["forbidden_traits"] = sorted(filters.forbidden_traits)
    for j, group in enumerate(filters.aggregates.required):
        values[f"aggregates{j}"] = sorted(group)
    values["forbidden_aggregates"] = sorted(filters.aggregates.forbidden)
    for k, (class_id, amount) in enumerate(filters.resources.items()):
        values[f"class{k}"], values[f"amount{k}"] = class_id, amount
    return values


def _uuid_list(name: str) -> BindParameter[Any]:
    return bindparam(name, type_=String, expanding=True)


def _listing(shape: _Shape) -> Select[Any]:
    name, uuid, in_tree, trait_sets, forbidden_traits, agg_sets, forbidden_aggs, classes = shape
    provider_id = _rp.c.id
    conditions: list[ColumnElement[bool]] = []
    if name:
        conditions.append(_rp.c.name == bindparam("name"))
    if uuid:
        conditions.append(_rp.c.uuid == bindparam("uuid"))
    if in_tree:
        tree = _rp.alias("tree")
        root_of = (
            select(tree.c.root_provider_id).where(tree.c.uuid == bindparam("tree"))
            .scalar_subquery()
        )
        conditions.append(_rp.c.root_provider_id == root_of)
    for j in range(trait_sets):
        conditions.append(has_any_trait(provider_id, int_list(f"traits{j}")))
    if forbidden_traits:
        conditions.append(~has_any_trait(provider_id, int_list("forbidden_traits")))
    for j in range(agg_sets):
        conditions.append(in_any_aggregate(provider_id, _uuid_list(f"aggregates{j}")))
    if forbidden_aggs:
        conditions.append(~in_any_aggregate(provider_id, _uuid_list("forbidden_aggregates")))
    for k in range(classes):
        fits = has_capacity(provider_id, int_param(f"class{k}"), int_param(f"amount{k}"))
        conditions.append(fits)
    return provider_select().where(*conditions).order_by(_rp.c.id)


class ResourceProviderRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def filtered(self, filters: ProviderFilters) -> list[ProviderRow]:
        if any(amount > MAX_AMOUNT for amount in filters.resources.values()):
            return []  # no inventory holds that much
        shape = _shape(filters)
        query = cached(("provider-listing", shape), lambda: _listing(shape))
        rows = await self.conn.execute(query, _values(filters))
        return [provider_from_row(row) for row in rows]

    async def name_taken(self, name: str, other_than: int | None = None) -> bool:
        query = select(_rp.c.id).where(_rp.c.name == name)
        if other_than is not None:
            query = query.where(_rp.c.id != other_than)
        return (await self.conn.execute(query.limit(1))).first() is not None

    async def uuid_or_name_taken(self, uuid: str, name: str) -> tuple[bool, bool]:
        """Whether a provider has this uuid, and whether one has this name: one
        round trip (the database compares, with its collation)."""
        if "\x00" in uuid:  # never stored; PostgreSQL rejects a NUL even in a comparison
            return False, await self.name_taken(name)
        row = (
            await self.conn.execute(
                select(
                    exists().where(_rp.c.uuid == uuid).label("uuid_taken"),
                    exists().where(_rp.c.name == name).label("name_taken"),
                )
            )
        ).one()
        return bool(row[0]), bool(row[1])

    async def insert(
        self, name: str, uuid: str, parent: ProviderRow | None, now: datetime
    ) -> ProviderRow:
        """A new provider (generation 0); a child joins its parent's tree.

        Answers the row as stored, built from what was written (no re-read).
        A concurrent creator of the same uuid or name, or a parent deleted
        meanwhile, fails the insert on a key: the unit of work is retried and its
        checks then answer.
        """
        values: dict[str, object] = {
            "uuid": uuid,
            "name": name,
            "generation": 0,
            "created_at": now,
        }
        if parent is not None:
            values["parent_provider_id"] = parent.id
            values["root_provider_id"] = parent.root_provider_id or parent.id
        result = await self.conn.execute(insert(_rp).values(**values))
        new_id: int = result.inserted_primary_key[0]  # type: ignore[index]
        if self.conn.dialect.name == "mysql":
            now = now.replace(microsecond=0)  # DATETIME keeps whole seconds
        if parent is not None:
            return ProviderRow(
                new_id, uuid, name, 0, parent.id, parent.root_provider_id or parent.id,
                parent.uuid, parent.root_provider_uuid or parent.uuid, now, None,
            )
        # A root is its own root; like the reference, this second write
        # stamps updated_at (children keep it null until changed).
        await self.conn.execute(
            _rp.update().where(_rp.c.id == new_id).values(root_provider_id=new_id, updated_at=now)
        )
        return ProviderRow(new_id, uuid, name, 0, None, new_id, None, uuid, now, now)

    async def subtree_ids(self, provider: ProviderRow) -> set[int]:
        """The provider and all its descendants (one query over its tree)."""
        root_id = provider.root_provider_id or provider.id
        rows = await self.conn.execute(
            select(_rp.c.id, _rp.c.parent_provider_id).where(_rp.c.root_provider_id == root_id)
        )
        children: dict[int, list[int]] = {}
        for id_, parent_id in rows:
            if parent_id is not None:
                children.setdefault(parent_id, []).append(id_)
        subtree = {provider.id}
        pending = [provider.id]
        while pending:
            for child in children.get(pending.pop(), []):
                if child not in subtree:
                    subtree.add(child)
                    pending.append(child)
        return subtree

    async def move_to_root(self, provider_ids: set[int], root_id: int, now: datetime) -> None:
        await self.conn.execute(
            _rp.update()
            .where(_rp.c.id.in_(sorted(provider_ids)))
            .values(root_provider_id=root_id, updated_at=now)
        )

    async def save(
        self, current: ProviderRow, *, name: str, parent_id: int | None, now: datetime
    ) -> bool:
        """Write the name and parent that differ from ``current``; False if none does.

        Nothing to write leaves ``updated_at`` as it was (as in the reference).
        A concurrent holder of the name wins on the unique key
        (:class:`ProviderRenameConflict`).
        """
        changes: dict[str, object] = {}
        if name != current.name:
            changes["name"] = name
        if parent_id != current.parent_provider_id:
            changes["parent_provider_id"] = parent_id
        if not changes:
            return False
        try:
            await self.conn.execute(
                _rp.update().where(_rp.c.id == current.id).values(**changes, updated_at=now)
            )
        except IntegrityError:
            raise ProviderRenameConflict(name=name) from None
        return True

    async def has_children(self, provider_id: int) -> bool:
        found = await self.conn.execute(
            select(_rp.c.id).where(_rp.c.parent_provider_id == provider_id).limit(1)
        )
        return found.first() is not None

    async def has_allocations(self, provider_id: int) -> bool:
        found = await self.conn.execute(
            select(_alloc.c.id).where(_alloc.c.resource_provider_id == provider_id).limit(1)
        )
        return found.first() is not None

    async def delete(self, provider_id: int) -> None:
        """The provider row with its inventories, aggregate and trait associations."""
        await self.conn.execute(delete(_inv).where(_inv.c.resource_provider_id == provider_id))
        await self.conn.execute(delete(_rpa).where(_rpa.c.resource_provider_id == provider_id))
        await self.conn.execute(delete(_rpt).where(_rpt.c.resource_provider_id == provider_id))
        # A root references itself: MySQL checks that key row by row, so unset it first.
        await self.conn.execute(
            _rp.update()
            .where(_rp.c.id == provider_id, _rp.c.root_provider_id == provider_id)
            .values(root_provider_id=None)
        )
        await self.conn.execute(delete(_rp).where(_rp.c.id == provider_id))
