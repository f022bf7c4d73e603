"""Usages: a provider's per class, and totals of a project (and user) by consumer type."""

from collections import defaultdict

from sqlalchemy import ColumnElement, Select, distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.consumers import UNKNOWN_CONSUMER_TYPE

_alloc = models.allocations
_inv = models.inventories
_consumers = models.consumers
_projects = models.projects
_users = models.users
_types = models.consumer_types
_rc = models.resource_classes

ALL_CONSUMER_TYPES = "all"


async def provider_usages(conn: AsyncConnection, provider_id: int) -> dict[str, int]:
    """Sum of allocations per class the provider has inventory of (0 if none)."""
    used = (
        select(
            _alloc.c.resource_class_id,
            func.sum(_alloc.c.used).label("used"),
        )
        .where(_alloc.c.resource_provider_id == provider_id)
        .group_by(_alloc.c.resource_class_id)
        .subquery()
    )
    rows = await conn.execute(
        select(_rc.c.name, func.coalesce(used.c.used, 0))
        .select_from(
            _inv.join(_rc, _rc.c.id == _inv.c.resource_class_id).outerjoin(
                used, used.c.resource_class_id == _inv.c.resource_class_id
            )
        )
        .where(_inv.c.resource_provider_id == provider_id)
        .order_by(_inv.c.resource_class_id)
    )
    return {name: int(total) for name, total in rows}


def _scoped(query: Select, project_id: str, user_id: str | None) -> Select:  # type: ignore[type-arg]
    """Allocations of consumers of the project (and user)."""
    joined = _alloc.join(_consumers, _consumers.c.uuid == _alloc.c.consumer_id).join(
        _projects, _projects.c.id == _consumers.c.project_id
    )
    conditions = [_projects.c.external_id == project_id]
    if user_id is not None:
        joined = joined.join(_users, _users.c.id == _consumers.c.user_id)
        conditions.append(_users.c.external_id == user_id)
    joined = joined.outerjoin(_types, _types.c.id == _consumers.c.consumer_type_id).join(
        _rc, _rc.c.id == _alloc.c.resource_class_id
    )
    return query.select_from(joined).where(*conditions)


async def totals(conn: AsyncConnection, project_id: str, user_id: str | None
                 ) -> dict[str, int]:
    """1.9-1.37: ``{class: used}`` over every consumer of the project (and user)."""
    rows = await conn.execute(
        _scoped(select(_rc.c.name, func.sum(_alloc.c.used)), project_id, user_id)
        .group_by(_rc.c.name)
        .order_by(_rc.c.name)
    )
    return {name: int(used) for name, used in rows}


async def totals_by_consumer_type(
    conn: AsyncConnection, project_id: str, user_id: str | None, consumer_type: str | None
) -> dict[str, dict[str, int]]:
    """1.38+: ``{type: {class: used, ..., "consumer_count": n}}``.

    ``consumer_type`` ``None``: every type (untyped consumers as ``unknown``);
    ``all``: one group over all consumers; ``unknown``: untyped consumers only;
    anything else: that type only (exact name).
    """
    group: ColumnElement[str]
    if consumer_type == ALL_CONSUMER_TYPES:
        group = literal_column(f"'{ALL_CONSUMER_TYPES}'")
    else:
        group = func.coalesce(_types.c.name, UNKNOWN_CONSUMER_TYPE)
    used_query = _scoped(
        select(group.label("type"), _rc.c.name, func.sum(_alloc.c.used)), project_id, user_id
    )
    count_query = _scoped(
        select(group.label("type"), func.count(distinct(_alloc.c.consumer_id))),
        project_id,
        user_id,
    )
    if consumer_type == UNKNOWN_CONSUMER_TYPE:
        used_query = used_query.where(_consumers.c.consumer_type_id.is_(None))
        count_query = count_query.where(_consumers.c.consumer_type_id.is_(None))
    elif consumer_type is not None and consumer_type != ALL_CONSUMER_TYPES:
        used_query = used_query.where(_types.c.name == consumer_type)
        count_query = count_query.where(_types.c.name == consumer_type)

    result: dict[str, dict[str, int]] = defaultdict(dict)
    for type_name, class_name, used in await conn.execute(
        used_query.group_by("type", _rc.c.name).order_by("type", _rc.c.name)
    ):
        result[type_name][class_name] = int(used)
    for type_name, count in await conn.execute(count_query.group_by("type")):
        if type_name in result:
            result[type_name]["consumer_count"] = int(count)
    return dict(result)
