"""``/resource_providers/{uuid}/aggregates`` (1.1+; with generation from 1.19)."""

from typing import Any

from fastapi import Request
from starlette.responses import Response

from app.api import http
from app.api.deps import DatabaseDep
from app.api.routing import PlacementRouter
from app.microversion import AGGREGATES, AGGREGATES_GENERATION, Version
from app.schemas.aggregates import (
    AGGREGATES_BODIES,
    AggregatesBody,
    AggregatesBodyV1_19,
    ProviderAggregates,
)
from app.services import aggregates as service
from app.services.aggregates import AggregatesUpdate, ProviderAggregateSet

router = PlacementRouter(tags=["aggregates"])

PROVIDER_AGGREGATES = "/resource_providers/{uuid}/aggregates"


def _aggregates_response(request: Request, found: ProviderAggregateSet) -> Response:
    body: dict[str, Any] = {"aggregates": found.aggregates}
    if http.version(request) >= AGGREGATES_GENERATION:
        body["resource_provider_generation"] = found.generation
    # The association has no timestamp of its own: Last-Modified is now.
    return http.respond(request, body)


def _as_update(data: Any, version: Version) -> AggregatesUpdate:
    if version >= AGGREGATES_GENERATION:
        body = http.validate(data, AggregatesBodyV1_19)
        return AggregatesUpdate(body.aggregates, body.resource_provider_generation)
    return AggregatesUpdate(http.validate(data, AggregatesBody).root)


@router.endpoint(
    "GET", PROVIDER_AGGREGATES, policy="placement:resource_providers:aggregates:list",
    response=ProviderAggregates, since=AGGREGATES, media_first=True,
)
async def list_provider_aggregates(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """List a resource provider's aggregates."""
    return _aggregates_response(request, await service.provider_aggregates(db, uuid))


@router.endpoint(
    "PUT", PROVIDER_AGGREGATES, policy="placement:resource_providers:aggregates:update",
    response=ProviderAggregates, since=AGGREGATES, media_first=True, request=AGGREGATES_BODIES,
)
async def replace_provider_aggregates(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Replace the provider's aggregates.

    The provider is looked up before the body is judged (a missing provider
    is a 404 even with a bad body). From 1.19 the body carries the
    generation the client saw, and the generation moves on every success.
    """
    version = http.version(request)
    update = await http.judge_body(request, lambda data: _as_update(data, version))
    found = await service.replace_provider_aggregates(db, uuid, update, http.utcnow())
    return _aggregates_response(request, found)
