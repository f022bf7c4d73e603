"""Provider aggregates (1.1+; with the provider generation from 1.19)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories import provider_setup
from app.db.repositories.aggregates import AggregateRepository
from app.db.repositories.providers_core import bump_generation, lock_provider_row
from app.exceptions import PlacementError, ProviderGenerationConflict, judged
from app.services.lookups import require_provider


@dataclass(frozen=True)
class ProviderAggregateSet:
    aggregates: list[str]
    generation: int


@dataclass(frozen=True)
class AggregatesUpdate:
    """A provider's new aggregate UUIDs (stored as sent)."""

    aggregates: list[str]
    # The generation the client last saw (1.19+); None: the generation stays.
    seen_generation: int | None = None


async def provider_aggregates(db: Database, uuid: str) -> ProviderAggregateSet:
    """The provider's aggregate UUIDs and generation."""

    async def read(conn: AsyncConnection) -> ProviderAggregateSet:
        provider = await require_provider(conn, uuid)
        aggregates = await AggregateRepository(conn).for_provider(provider.id)
        return ProviderAggregateSet(aggregates, provider.generation)

    return await db.read(read)


async def replace_provider_aggregates(
    db: Database, uuid: str, update: AggregatesUpdate | PlacementError, now: datetime
) -> ProviderAggregateSet:
    """Make the provider's aggregate set exactly ``update.aggregates``.

    ``update`` may be the error judging the body produced: the provider is
    looked up first (a missing provider is a 404 even with a bad body). With
    ``seen_generation`` it must match the provider's (else 409), and the
    generation moves by compare-and-swap even when the set is unchanged.
    """

    async def write(conn: AsyncConnection) -> ProviderAggregateSet:
        provider = await require_provider(conn, uuid)
        valid = judged(update)
        seen = valid.seen_generation
        if seen is not None and seen != provider.generation:
            raise ProviderGenerationConflict()
        generation = provider.generation
        # First, so the provider's row is locked before its set is read: a
        # concurrent writer of this provider waits here, then (READ COMMITTED)
        # reads what this one committed; with a generation it finds it moved
        # (RowMoved, retried, then the 409).
        if seen is not None:
            generation = await bump_generation(conn, provider.id, provider.generation, now=now)
        else:
            await lock_provider_row(conn, provider.id)
        await AggregateRepository(conn).set_for_provider(provider.id, valid.aggregates, now)
        return ProviderAggregateSet(valid.aggregates, generation)

    if not isinstance(update, PlacementError) and update.seen_generation is not None:
        generation = await provider_setup.replace_aggregates(
            db, uuid, update.seen_generation, update.aggregates, now)
        if generation is not None:
            return ProviderAggregateSet(update.aggregates, generation)
    # Writers of one provider queue on its row, so READ COMMITTED suffices:
    # writers of distinct providers never abort each other (serializable
    # isolation failed about a third of them on PostgreSQL under 8 loaders,
    # and MySQL's REPEATABLE READ let two pre-1.19 writers merge their sets).
    return await db.guarded_write(write)
