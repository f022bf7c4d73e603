"""Usages: a provider's per resource class, a project's (and user's) totals."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories import usages as usage_repo
from app.exceptions import ResourceProviderNotFoundRepeated
from app.services.lookups import require_provider


@dataclass(frozen=True)
class ProviderUsages:
    generation: int
    # One entry per class the provider has inventory of (0 when unused).
    usages: dict[str, int]


async def provider_usages(db: Database, uuid: str) -> ProviderUsages:
    """The sum of the provider's allocations per class it has inventory of."""

    async def read(conn: AsyncConnection) -> ProviderUsages:
        provider = await require_provider(
            conn, uuid, missing=ResourceProviderNotFoundRepeated(uuid=uuid)
        )
        usages = await usage_repo.provider_usages(conn, provider.id)
        return ProviderUsages(provider.generation, usages)

    return await db.read(read)


async def project_usages(db: Database, project_id: str, user_id: str | None) -> dict[str, int]:
    """``{class: used}`` over every consumer of the project (and user)."""
    return await db.read(lambda c: usage_repo.totals(c, project_id, user_id))


async def project_usages_by_type(
    db: Database, project_id: str, user_id: str | None, consumer_type: str | None
) -> dict[str, dict[str, int]]:
    """``{type: {class: used, ..., "consumer_count": n}}``.

    ``consumer_type`` ``None``: every type (untyped consumers as ``unknown``);
    ``all``: one group over all consumers; ``unknown``: untyped consumers only;
    anything else: that type only.
    """
    return await db.read(
        lambda c: usage_repo.totals_by_consumer_type(c, project_id, user_id, consumer_type)
    )
