"""``/resource_providers/{uuid}/aggregates`` (1.1+; with generation from 1.19)."""

from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.db.engine import run_read, run_write
from app.db.repositories.aggregates import AggregateRepository
from app.db.repositories.providers_core import get_provider
from app.exceptions import PlacementError
from app.microversion import AGGREGATES, AGGREGATES_GENERATION
from app.schemas.aggregates import (
    AGGREGATES_BODIES,
    AggregatesBody,
    AggregatesBodyV1_19,
    ProviderAggregates,
)

router = PlacementRouter(tags=["aggregates"])




def _aggregates_response(
    request: Request, aggregates: list[str], generation: int
) -> Response:
    body: dict[str, Any] = {"aggregates": aggregates}
    if http.version(request) >= AGGREGATES_GENERATION:
        body["resource_provider_generation"] = generation
    # The association has no timestamp of its own: Last-Modified is now.
    return http.respond(request, body)


@router.endpoint(
    "GET", "/resource_providers/{uuid}/aggregates",
    policy="placement:resource_providers:aggregates:list", response=ProviderAggregates,
    since=AGGREGATES, media_first=True,
)
async def list_provider_aggregates(request: Request, uuid: str) -> Response:

    async def read(conn: AsyncConnection) -> tuple[list[str], int]:
        provider = await get_provider(conn, uuid)
        return await AggregateRepository(conn).for_provider(provider.id), provider.generation

    aggregates, generation = await run_read(http.engine(request), read)
    return _aggregates_response(request, aggregates, generation)


@router.endpoint(
    "PUT", "/resource_providers/{uuid}/aggregates",
    policy="placement:resource_providers:aggregates:update", response=ProviderAggregates,
    since=AGGREGATES, media_first=True, request=AGGREGATES_BODIES,
)
async def replace_provider_aggregates(request: Request, uuid: str) -> Response:
    """Replace the provider's aggregates.

    The provider is looked up before the body is judged (a missing provider
    is a 404 even with a bad body). From 1.19 the body carries the
    generation the client saw, and the generation moves on every success.
    """
    with_generation = http.version(request) >= AGGREGATES_GENERATION
    aggregates: list[str] = []
    seen_generation: int | None = None
    body_error: PlacementError | None = None
    try:
        data = await http.json_body(request)
        if with_generation:
            body = http.validate(data, AggregatesBodyV1_19)
            aggregates, seen_generation = body.aggregates, body.resource_provider_generation
        else:
            aggregates = http.validate(data, AggregatesBody).root
    except PlacementError as exc:
        body_error = exc
    now = http.utcnow()

    async def write(conn: AsyncConnection) -> int:
        provider = await get_provider(conn, uuid)
        if body_error is not None:
            raise body_error
        return await AggregateRepository(conn).replace_for_provider(
            provider, aggregates, now, seen_generation=seen_generation
        )

    generation = await run_write(http.engine(request), write)
    return _aggregates_response(request, aggregates, generation)
