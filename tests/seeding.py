"""Rows written straight into the tables, for tests that must not depend on the
endpoints that would otherwise create them (providers, traits, aggregates,
inventories, allocations). Each helper commits its own transaction.
"""

import uuid as uuidlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import models


def _now() -> datetime:
    # Naive UTC, as the service stores its timestamps.
    return datetime.now(UTC).replace(tzinfo=None)


async def _provider_id(conn: AsyncConnection, uuid: str) -> int:
    rp = models.resource_providers
    return int((await conn.execute(select(rp.c.id).where(rp.c.uuid == uuid))).scalar_one())


async def _id_by_name(conn: AsyncConnection, table: Any, name: str) -> int:
    return int((await conn.execute(select(table.c.id).where(table.c.name == name))).scalar_one())


async def _class_id(conn: AsyncConnection, resource_class: str | int) -> int:
    if isinstance(resource_class, int):
        return resource_class
    return await _id_by_name(conn, models.resource_classes, resource_class)


async def insert_provider(engine: AsyncEngine) -> str:
    """A root provider ``rp-<uuid>`` at generation 0; returns its uuid."""
    uuid = str(uuidlib.uuid4())
    rp = models.resource_providers
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(rp).values(uuid=uuid, name=f"rp-{uuid}", generation=0, created_at=_now())
        )
        new_id = result.inserted_primary_key[0]  # type: ignore[index]
        await conn.execute(rp.update().where(rp.c.id == new_id).values(root_provider_id=new_id))
    return uuid


async def add_traits(engine: AsyncEngine, uuid: str, *names: str) -> None:
    async with engine.begin() as conn:
        rp_id = await _provider_id(conn, uuid)
        for name in names:
            trait_id = await _id_by_name(conn, models.traits, name)
            await conn.execute(
                insert(models.resource_provider_traits).values(
                    resource_provider_id=rp_id, trait_id=trait_id
                )
            )


async def add_aggregate(engine: AsyncEngine, uuid: str, aggregate: str) -> None:
    agg = models.placement_aggregates
    async with engine.begin() as conn:
        rp_id = await _provider_id(conn, uuid)
        agg_id = (await conn.execute(select(agg.c.id).where(agg.c.uuid == aggregate))).scalar()
        if agg_id is None:
            result = await conn.execute(insert(agg).values(uuid=aggregate))
            agg_id = result.inserted_primary_key[0]  # type: ignore[index]
        await conn.execute(
            insert(models.resource_provider_aggregates).values(
                resource_provider_id=rp_id, aggregate_id=agg_id
            )
        )


async def add_inventory(
    engine: AsyncEngine,
    uuid: str,
    rc: str,
    total: int,
    *,
    reserved: int = 0,
    min_unit: int = 1,
    max_unit: int | None = None,
    step_size: int = 1,
    ratio: float = 1.0,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.inventories).values(
                resource_provider_id=await _provider_id(conn, uuid),
                resource_class_id=await _class_id(conn, rc),
                total=total,
                reserved=reserved,
                min_unit=min_unit,
                max_unit=max_unit if max_unit is not None else total,
                step_size=step_size,
                allocation_ratio=ratio,
            )
        )


async def add_allocation(
    engine: AsyncEngine, uuid: str, resource_class: str | int, used: int
) -> None:
    """``used`` of a class (name or id) for a new consumer id (no consumer row)."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(models.allocations).values(
                resource_provider_id=await _provider_id(conn, uuid),
                resource_class_id=await _class_id(conn, resource_class),
                consumer_id=str(uuidlib.uuid4()),
                used=used,
                created_at=_now(),
            )
        )
