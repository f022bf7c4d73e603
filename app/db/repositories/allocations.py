"""Allocations as read back (per consumer, per provider) and their deletion.

Writing allocations is a claim: see :mod:`app.services.claims` and the
``claim_*`` repositories.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.consumers import UNKNOWN_CONSUMER_TYPE

_alloc = models.allocations
_rp = models.resource_providers
_rc = models.resource_classes
_consumers = models.consumers
_projects = models.projects
_users = models.users
_types = models.consumer_types


@dataclass
class ConsumerAllocations:
    """A consumer's allocations by provider (empty: no consumer)."""

    allocations: dict[str, dict[str, object]]
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    consumer_type: str | None = None
    last_modified: datetime | None = None


async def for_consumer(conn: AsyncConnection, consumer_uuid: str) -> ConsumerAllocations:
    rows = await conn.execute(
        select(
            _rp.c.uuid,
            _rp.c.generation,
            _rc.c.name,
            _alloc.c.used,
            _alloc.c.created_at,
            _consumers.c.generation,
            _projects.c.external_id,
            _users.c.external_id,
            _types.c.name,
        )
        .select_from(
            _alloc.join(_rp, _rp.c.id == _alloc.c.resource_provider_id)
            .join(_rc, _rc.c.id == _alloc.c.resource_class_id)
            .join(_consumers, _consumers.c.uuid == _alloc.c.consumer_id)
            .join(_projects, _projects.c.id == _consumers.c.project_id)
            .join(_users, _users.c.id == _consumers.c.user_id)
            .outerjoin(_types, _types.c.id == _consumers.c.consumer_type_id)
        )
        .where(_alloc.c.consumer_id == consumer_uuid)
        .order_by(_alloc.c.id)
    )
    result = ConsumerAllocations({})
    for rp_uuid, rp_gen, class_name, used, created, c_gen, project, user, ctype in rows:
        entry = result.allocations.setdefault(rp_uuid, {"generation": rp_gen or 0,
                                                        "resources": {}})
        entry["resources"][class_name] = used  # type: ignore[index]
        result.project_id, result.user_id, result.generation = project, user, c_gen
        result.consumer_type = ctype or UNKNOWN_CONSUMER_TYPE
        if created is not None and (result.last_modified is None
                                    or created > result.last_modified):
            result.last_modified = created
    return result


@dataclass
class ProviderAllocations:
    """A provider's allocations by consumer (each with ``consumer_generation``)."""

    generation: int
    allocations: dict[str, dict[str, object]]
    last_modified: datetime | None


async def for_provider(conn: AsyncConnection, rp_uuid: str) -> ProviderAllocations | None:
    """None when there is no such provider."""
    provider = (
        await conn.execute(select(_rp.c.id, _rp.c.generation).where(_rp.c.uuid == rp_uuid))
    ).first()
    if provider is None:
        return None
    rows = await conn.execute(
        select(_alloc.c.consumer_id, _rc.c.name, _alloc.c.used, _alloc.c.created_at,
               _consumers.c.generation)
        .select_from(
            _alloc.join(_rc, _rc.c.id == _alloc.c.resource_class_id)
            .join(_consumers, _consumers.c.uuid == _alloc.c.consumer_id)
        )
        .where(_alloc.c.resource_provider_id == provider.id)
        .order_by(_alloc.c.id)
    )
    allocations: dict[str, dict[str, object]] = {}
    last: datetime | None = None
    for consumer, class_name, used, created, c_gen in rows:
        entry = allocations.setdefault(consumer, {"resources": {}, "consumer_generation": c_gen})
        entry["resources"][class_name] = used  # type: ignore[index]
        if created is not None and (last is None or created > last):
            last = created
    return ProviderAllocations(provider.generation or 0, allocations, last)


async def delete_for_consumer(conn: AsyncConnection, consumer_uuid: str) -> int:
    """Remove a consumer's allocations (no generation changes); how many."""
    result = await conn.execute(delete(_alloc).where(_alloc.c.consumer_id == consumer_uuid))
    return int(result.rowcount)
