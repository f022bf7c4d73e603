"""Lookups every service shares."""

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.repositories.providers_core import find_provider
from app.exceptions import PlacementError, ResourceProviderNotFound
from app.records import ProviderRow


async def require_provider(
    conn: AsyncConnection, uuid: str, missing: PlacementError | None = None
) -> ProviderRow:
    """The provider with exactly this uuid; ``missing`` (or the plain 404) if none."""
    provider = await find_provider(conn, uuid)
    if provider is None:
        raise missing or ResourceProviderNotFound(uuid=uuid)
    return provider
