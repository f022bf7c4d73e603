"""Resource providers: create, rename/re-parent, delete, and the filtered listing.

Every filter of ``GET /resource_providers`` is a set-based condition on the
one provider query (``EXISTS`` subqueries), so a listing is a single SELECT.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Integer, delete, exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.providers_core import (
    ProviderRow,
    find_provider,
    get_provider,
    provider_from_row,
    provider_select,
)
from app.exceptions import (
    DUPLICATE_NAME,
    PROVIDER_CANNOT_DELETE_PARENT,
    PROVIDER_INUSE,
    Conflict,
    InvalidInput,
)
from app.query import AggregateFilter, TraitFilter

_rp = models.resource_providers
_inv = models.inventories
_alloc = models.allocations
_rpt = models.resource_provider_traits
_rpa = models.resource_provider_aggregates
_agg = models.placement_aggregates
_traits = models.traits
_rc = models.resource_classes

# Inventory integers never exceed this, so larger amounts can never fit.
MAX_AMOUNT = 0x7FFFFFFF


class NoSuchTraits(InvalidInput):
    """Unknown trait names; ``message`` is ``No such trait(s): A, B.``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"No such trait(s): {', '.join(names)}.")
        self.names = names


class NoSuchResourceClass(InvalidInput):
    """An unknown resource class; ``message`` is ``No such resource class X.``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such resource class {name}.")
        self.name = name


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


async def resource_class_ids(conn: AsyncConnection, names: Iterable[str]) -> dict[str, int]:
    """Ids of the named classes; ``NoSuchResourceClass`` for the first unknown one."""
    ordered = list(dict.fromkeys(names))
    if not ordered:
        return {}
    rows = await conn.execute(select(_rc.c.name, _rc.c.id).where(_rc.c.name.in_(ordered)))
    found = {name: id_ for name, id_ in rows}
    for name in ordered:
        if name not in found:
            raise NoSuchResourceClass(name)
    return {name: found[name] for name in ordered}


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
    provider_id: ColumnElement[int], class_id: int, amount: int
) -> ColumnElement[bool]:
    """The provider alone can take ``amount`` of the class (spec §4.2 formula).

    Written as ``id IN (fitting inventory rows)`` with the class's usage grouped
    once, not as a correlated EXISTS: the planner can then hash it whatever the
    table statistics say (a fresh, never-analyzed database included).
    """
    if amount > MAX_AMOUNT:
        return literal(False)
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
    wanted = literal(amount, Integer)
    fitting = (
        select(inv.c.resource_provider_id)
        .select_from(inv.outerjoin(usage, usage.c.provider_id == inv.c.resource_provider_id))
        .where(
            inv.c.resource_class_id == class_id,
            inv.c.min_unit <= wanted,
            inv.c.max_unit >= wanted,
            wanted.op("%")(inv.c.step_size) == 0,
            (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio
            >= func.coalesce(usage.c.used, 0) + wanted,
        )
    )
    return provider_id.in_(fitting)


def has_any_trait(provider_id: ColumnElement[int], ids: set[int]) -> ColumnElement[bool]:
    rpt = _rpt.alias("rpt")
    return exists(
        select(1).select_from(rpt).where(
            rpt.c.resource_provider_id == provider_id, rpt.c.trait_id.in_(sorted(ids))
        )
    )


def in_any_aggregate(provider_id: ColumnElement[int], uuids: Iterable[str]) -> ColumnElement[bool]:
    rpa = _rpa.alias("rpa")
    agg = _agg.alias("agg")
    return exists(
        select(1)
        .select_from(rpa.join(agg, agg.c.id == rpa.c.aggregate_id))
        .where(rpa.c.resource_provider_id == provider_id, agg.c.uuid.in_(sorted(uuids)))
    )


def _conditions(filters: ProviderFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    provider_id = _rp.c.id
    if filters.name:
        conditions.append(_rp.c.name == filters.name)
    if filters.uuid:
        conditions.append(_rp.c.uuid == filters.uuid)
    if filters.in_tree:
        tree = _rp.alias("tree")
        root_of = (
            select(tree.c.root_provider_id).where(tree.c.uuid == filters.in_tree).scalar_subquery()
        )
        conditions.append(_rp.c.root_provider_id == root_of)
    for ids in filters.required_traits:
        conditions.append(has_any_trait(provider_id, ids))
    if filters.forbidden_traits:
        conditions.append(~has_any_trait(provider_id, filters.forbidden_traits))
    for group in filters.aggregates.required:
        conditions.append(in_any_aggregate(provider_id, group))
    if filters.aggregates.forbidden:
        conditions.append(~in_any_aggregate(provider_id, filters.aggregates.forbidden))
    for class_id, amount in filters.resources.items():
        conditions.append(has_capacity(provider_id, class_id, amount))
    return conditions


def _create_error(name: str, uuid: str, reason: str) -> InvalidInput:
    return InvalidInput(
        f'Unable to create resource provider "{name}", {uuid}: Object action create failed '
        f"because: {reason}"
    )


def _update_error(uuid: str, reason: str, action: str = "update") -> InvalidInput:
    return InvalidInput(
        f"Unable to save resource provider {uuid}: Object action {action} failed because: "
        f"{reason}"
    )


class ResourceProviderRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, uuid: str) -> ProviderRow:
        return await get_provider(self.conn, uuid)

    async def filtered(self, filters: ProviderFilters) -> list[ProviderRow]:
        query = provider_select()
        for condition in _conditions(filters):
            query = query.where(condition)
        query = query.order_by(_rp.c.id)
        rows = await self.conn.execute(query)
        return [provider_from_row(row) for row in rows]

    async def _name_taken(self, name: str, other_than: int | None = None) -> bool:
        query = select(_rp.c.id).where(_rp.c.name == name)
        if other_than is not None:
            query = query.where(_rp.c.id != other_than)
        return (await self.conn.execute(query.limit(1))).first() is not None

    async def create(
        self, name: str, uuid: str, parent_uuid: str | None, now: datetime
    ) -> ProviderRow:
        """A new provider (generation 0); a child joins its parent's tree."""
        if not name:
            raise _create_error(name, uuid, "name is required")
        parent: ProviderRow | None = None
        if parent_uuid is not None:
            if parent_uuid == uuid:
                raise _create_error(
                    name,
                    uuid,
                    "parent provider UUID cannot be same as UUID. Please set parent provider "
                    "UUID to None if there is no parent.",
                )
            parent = await find_provider(self.conn, parent_uuid)
            if parent is None:
                raise _create_error(name, uuid, "parent provider UUID does not exist.")
        if await find_provider(self.conn, uuid) is not None:
            raise Conflict(
                f"Conflicting resource provider uuid: {uuid} already exists.",
                code=DUPLICATE_NAME,
            )
        if await self._name_taken(name):
            raise Conflict(
                f"Conflicting resource provider name: {name} already exists.",
                code=DUPLICATE_NAME,
            )
        values: dict[str, object] = {
            "uuid": uuid,
            "name": name,
            "generation": 0,
            "created_at": now,
        }
        if parent is not None:
            values["parent_provider_id"] = parent.id
            values["root_provider_id"] = parent.root_provider_id or parent.id
        try:
            result = await self.conn.execute(insert(_rp).values(**values))
        except IntegrityError:
            raise Conflict(
                f"Conflicting resource provider name: {name} already exists.",
                code=DUPLICATE_NAME,
            ) from None
        if parent is None:
            # A root is its own root; like the reference, this second write
            # stamps updated_at (children keep it null until changed).
            new_id = result.inserted_primary_key[0]  # type: ignore[index]
            await self.conn.execute(
                _rp.update()
                .where(_rp.c.id == new_id)
                .values(root_provider_id=new_id, updated_at=now)
            )
        return await get_provider(self.conn, uuid)

    async def _subtree_ids(self, provider: ProviderRow) -> set[int]:
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

    async def update(
        self,
        uuid: str,
        name: str,
        *,
        parent_given: bool,
        parent_uuid: str | None,
        allow_reparent: bool,
        now: datetime,
    ) -> tuple[ProviderRow, datetime | None]:
        """Rename and/or (re-/un-)parent; returns the provider and its previous updated_at.

        The generation is left alone. When the root changes, the provider
        and every descendant move to the new root.
        """
        current = await get_provider(self.conn, uuid)
        parent_id = current.parent_provider_id
        root_id = current.root_provider_id or current.id
        if parent_given:
            new_parent: ProviderRow | None = None
            if parent_uuid is not None:
                new_parent = await find_provider(self.conn, parent_uuid)
                if new_parent is None:
                    raise _update_error(uuid, "parent provider UUID does not exist.", "create")
            new_parent_id = new_parent.id if new_parent is not None else None
            if current.parent_provider_id is not None and not allow_reparent:
                if new_parent_id is None:
                    raise _update_error(
                        uuid, "un-parenting a provider is not currently allowed."
                    )
                if new_parent_id != current.parent_provider_id:
                    raise _update_error(
                        uuid, "re-parenting a provider is not currently allowed."
                    )
            if new_parent is not None and new_parent_id != current.parent_provider_id:
                if new_parent.id in await self._subtree_ids(current):
                    raise _update_error(
                        uuid, "creating loop in the provider tree is not allowed."
                    )
            parent_id = new_parent_id
            if new_parent is not None:
                root_id = new_parent.root_provider_id or new_parent.id
            else:
                root_id = current.id
        if name != current.name and await self._name_taken(name, other_than=current.id):
            raise Conflict(
                f"Conflicting resource provider {name} already exists.", code=DUPLICATE_NAME
            )
        old_root = current.root_provider_id or current.id
        if root_id != old_root:
            subtree = await self._subtree_ids(current)
            await self.conn.execute(
                _rp.update()
                .where(_rp.c.id.in_(sorted(subtree)))
                .values(root_provider_id=root_id, updated_at=now)
            )
        changes: dict[str, object] = {}
        if name != current.name:
            changes["name"] = name
        if parent_id != current.parent_provider_id:
            changes["parent_provider_id"] = parent_id
        if not changes:
            # Nothing to write: like the reference, updated_at stays as it was.
            return current, current.updated_at
        try:
            await self.conn.execute(
                _rp.update().where(_rp.c.id == current.id).values(**changes, updated_at=now)
            )
        except IntegrityError:
            raise Conflict(
                f"Conflicting resource provider {name} already exists.", code=DUPLICATE_NAME
            ) from None
        return await get_provider(self.conn, uuid), current.updated_at

    async def delete(self, uuid: str) -> None:
        """Delete a childless provider without allocations, with its associations."""
        current = await get_provider(
            self.conn, uuid, f"No resource provider with uuid {uuid} found for delete"
        )
        has_children = (
            await self.conn.execute(
                select(_rp.c.id).where(_rp.c.parent_provider_id == current.id).limit(1)
            )
        ).first()
        if has_children is not None:
            raise Conflict(
                f"Unable to delete parent resource provider {uuid}: It has child resource "
                "providers.",
                code=PROVIDER_CANNOT_DELETE_PARENT,
            )
        in_use = (
            await self.conn.execute(
                select(_alloc.c.id).where(_alloc.c.resource_provider_id == current.id).limit(1)
            )
        ).first()
        if in_use is not None:
            raise Conflict(
                f"Unable to delete resource provider {uuid}: Resource provider has allocations.",
                code=PROVIDER_INUSE,
            )
        await self.conn.execute(delete(_inv).where(_inv.c.resource_provider_id == current.id))
        await self.conn.execute(delete(_rpa).where(_rpa.c.resource_provider_id == current.id))
        await self.conn.execute(delete(_rpt).where(_rpt.c.resource_provider_id == current.id))
        await self.conn.execute(delete(_rp).where(_rp.c.id == current.id))
