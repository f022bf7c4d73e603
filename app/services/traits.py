"""Traits (``CUSTOM_*`` ones created and deleted by clients) and provider traits."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories import provider_setup, provider_setup_postgresql
from app.db.repositories.providers_core import bump_generation
from app.db.repositories.traits import CUSTOM_PREFIX, TraitRepository, TraitRow
from app.exceptions import (
    InvalidCustomTraitName,
    ProviderGenerationConflict,
    ResourceProviderNotFoundRepeated,
    StandardTraitNotDeletable,
    TraitInUse,
    UnknownTraits,
)
from app.schemas.traits import is_custom_trait_name
from app.services.lookups import require_provider


@dataclass(frozen=True)
class TraitFilters:
    """``GET /traits`` filters; ``None`` filters nothing."""

    names: list[str] | None = None
    # A SQL LIKE prefix, as in the reference: "_" and "%" are wildcards.
    prefix: str | None = None
    associated: bool | None = None


@dataclass(frozen=True)
class TraitNames:
    """Trait names in order, and the newest change among them (Last-Modified)."""

    names: list[str]
    modified: datetime | None

    @classmethod
    def of(cls, traits: Sequence[TraitRow]) -> "TraitNames":
        changes = [trait.modified for trait in traits if trait.modified is not None]
        return cls([trait.name for trait in traits], max(changes) if changes else None)


@dataclass(frozen=True)
class ProviderTraitNames:
    traits: TraitNames
    generation: int


@dataclass(frozen=True)
class EnsuredTrait:
    created: bool
    # None only when a concurrent request created the trait first and it is not
    # visible to this transaction.
    created_at: datetime | None


async def list_traits(db: Database, filters: TraitFilters) -> TraitNames:
    """Traits matching every filter, by name."""
    traits = await db.read(
        lambda c: TraitRepository(c).filtered(
            names=filters.names, prefix=filters.prefix, associated=filters.associated
        )
    )
    return TraitNames.of(traits)


async def trait_created_at(db: Database, name: str) -> datetime | None:
    """When the trait was created (404 if there is none)."""
    trait = await db.read(lambda c: TraitRepository(c).get(name))
    return trait.created_at


async def ensure_custom_trait(db: Database, name: str, now: datetime) -> EnsuredTrait:
    """Create the custom trait unless it exists (400 for a name not ``CUSTOM_*``)."""
    if not is_custom_trait_name(name):
        raise InvalidCustomTraitName()
    if provider_setup_postgresql.applies(db, name):
        # Usually there already: one autocommitted read, no transaction.
        existing = await db.single_statement(lambda c: TraitRepository(c).find(name))
        if existing is not None:
            return EnsuredTrait(False, existing.created_at)
    # The name is a unique key: a concurrent creator makes the insert a no-op
    # and the re-read finds its row (READ COMMITTED), so no serializable abort.
    trait, created = await db.write(lambda c: TraitRepository(c).ensure(name, now), keyed=True)
    return EnsuredTrait(created, trait.created_at if trait else None)


async def delete_custom_trait(db: Database, name: str) -> None:
    """Delete a custom trait no provider has (standard traits stay)."""

    async def write(conn: AsyncConnection) -> None:
        repo = TraitRepository(conn)
        trait = await repo.get(name)
        if not trait.name.startswith(CUSTOM_PREFIX):
            raise StandardTraitNotDeletable(name=name)
        if await repo.in_use(trait.id):
            raise TraitInUse(name=name)
        await repo.delete(trait.id)

    await db.write(write)


async def provider_traits(db: Database, uuid: str) -> ProviderTraitNames:
    """The provider's traits and generation."""

    async def read(conn: AsyncConnection) -> ProviderTraitNames:
        provider = await require_provider(
            conn, uuid, missing=ResourceProviderNotFoundRepeated(uuid=uuid)
        )
        traits = await TraitRepository(conn).for_provider(provider.id)
        return ProviderTraitNames(TraitNames.of(traits), provider.generation)

    return await db.read(read)


async def replace_provider_traits(
    db: Database, uuid: str, names: list[str], seen_generation: int, now: datetime
) -> ProviderTraitNames:
    """Make the provider's traits exactly ``names``.

    ``seen_generation`` must match the provider's (else 409), every name must
    exist (else 400 naming the missing ones). The generation moves
    (compare-and-swap) only if the set actually changed.
    """

    async def write(conn: AsyncConnection) -> ProviderTraitNames:
        provider = await require_provider(conn, uuid)
        if seen_generation != provider.generation:
            raise ProviderGenerationConflict()
        repo = TraitRepository(conn)
        found, current = await repo.named_and_held(names, provider.id)
        missing = [name for name in dict.fromkeys(names) if name not in found]
        if missing:
            raise UnknownTraits(names=", ".join(missing))
        wanted = {row.id for row in found.values()}
        generation = provider.generation
        if current != wanted:
            stale = current - wanted
            if stale:
                await repo.remove_from_provider(provider.id, stale)
            to_add = wanted - current
            if to_add:
                await repo.add_to_provider(provider.id, to_add, now)
            generation = await bump_generation(conn, provider.id, provider.generation, now=now)
        traits = sorted(found.values(), key=lambda row: row.name)
        return ProviderTraitNames(TraitNames.of(traits), generation)

    written = await provider_setup.replace_traits(db, uuid, seen_generation, names, now)
    if written is not None:
        new_generation, stamps = written
        rows = sorted((TraitRow(0, *stamp) for stamp in stamps), key=lambda row: row.name)
        return ProviderTraitNames(TraitNames.of(rows), new_generation)
    return await db.guarded_write(write)


async def clear_provider_traits(db: Database, uuid: str, now: datetime) -> None:
    """Remove every trait of the provider; the generation moves if there were any."""

    async def write(conn: AsyncConnection) -> None:
        provider = await require_provider(conn, uuid)
        if await TraitRepository(conn).clear_provider(provider.id):
            await bump_generation(conn, provider.id, provider.generation, now=now)

    await db.guarded_write(write)
