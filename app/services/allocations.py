"""Allocations of a consumer or a provider: reads, writes (claims) and deletion.

Write bodies are any version's validated consumer models of
:mod:`app.schemas.allocations` (see :func:`app.services.claims.claim_from_body`).
"""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories import allocations as repo
from app.db.repositories.allocations import ConsumerAllocations, ProviderAllocations
from app.db.repositories.consumers import delete_consumers_by_uuid
from app.exceptions import (
    AllocationsProviderNotFound,
    AllocationsRaced,
    AllocationsUnknownResourceClass,
    ConsumerUnknownResourceClass,
    NoAllocationsForConsumer,
    UnknownResourceClass,
)
from app.microversion import Version
from app.services.claims import claim_from_body, write_claims
from app.settings import Settings


async def consumer_allocations(db: Database, consumer_uuid: str) -> ConsumerAllocations:
    """The consumer's allocations by provider (none for an unknown consumer)."""
    return await db.read(lambda conn: repo.for_consumer(conn, consumer_uuid))


async def provider_allocations(db: Database, uuid: str) -> ProviderAllocations:
    """The allocations against a provider, by consumer (404 for no provider)."""

    async def read(conn: AsyncConnection) -> ProviderAllocations:
        found = await repo.for_provider(conn, uuid)
        if found is None:
            raise AllocationsProviderNotFound(uuid=uuid)
        return found

    return await db.read(read)


async def replace_consumer_allocations(
    db: Database,
    consumer_uuid: str,
    body: Any,
    *,
    version: Version,
    settings: Settings,
    now: datetime,
) -> None:
    """``PUT /allocations/{uuid}``: the consumer's allocations become the body's."""
    claim = claim_from_body(consumer_uuid, body, version, settings)
    try:
        await write_claims(db, [claim], now, exhausted=AllocationsRaced)
    except UnknownResourceClass as exc:
        raise ConsumerUnknownResourceClass(uuid=consumer_uuid, reason=exc.message) from None


async def replace_allocations(
    db: Database,
    bodies: dict[str, Any],
    *,
    version: Version,
    settings: Settings,
    now: datetime,
) -> None:
    """``POST /allocations``: several consumers' allocations (by consumer uuid),
    all or nothing."""
    claims = [
        claim_from_body(consumer_uuid, body, version, settings)
        for consumer_uuid, body in bodies.items()
    ]
    try:
        await write_claims(db, claims, now, exhausted=AllocationsRaced)
    except UnknownResourceClass as exc:
        raise AllocationsUnknownResourceClass(reason=exc.message) from None


async def delete_consumer_allocations(db: Database, consumer_uuid: str) -> None:
    """Remove a consumer's allocations and the consumer; no generation changes.

    A serializable write, not a claim: it must see (or fail against) every
    allocation a concurrent claim gives the consumer, and it changes no
    provider generation, so it takes no provider lock.
    """

    async def delete(conn: AsyncConnection) -> None:
        if not await repo.delete_for_consumer(conn, consumer_uuid):
            raise NoAllocationsForConsumer(uuid=consumer_uuid)
        await delete_consumers_by_uuid(conn, [consumer_uuid])

    await db.write(delete)
