"""``/allocations/{consumer_uuid}``, ``POST /allocations`` (1.13+) and
``GET /resource_providers/{uuid}/allocations``."""

from typing import Any

from fastapi import Request
from starlette.responses import Response

from app.api import deps, http
from app.api.deps import DatabaseDep, SettingsDep
from app.api.routing import PlacementRouter
from app.exceptions import MalformedConsumerUuid
from app.microversion import (
    ALLOCATIONS_DICT_FORM,
    CONSUMER_GENERATIONS,
    CONSUMER_TYPES,
    POST_ALLOCATIONS,
)
from app.schemas.allocations import (
    CONSUMER_ALLOCATIONS_OUT,
    POST_BODIES,
    PROVIDER_ALLOCATIONS_OUT,
    PUT_BODIES,
    is_uuid_like,
    normalize_uuid,
)
from app.services import allocations as service

router = PlacementRouter(tags=["allocations"])

ITEM = "/allocations/{consumer_uuid}"


@router.endpoint(
    "GET", ITEM, policy="placement:allocations:list", response=CONSUMER_ALLOCATIONS_OUT,
)
async def get_allocations(request: Request, consumer_uuid: str, db: DatabaseDep) -> Response:
    """Show a consumer's allocations, by resource provider."""
    version = http.version(request)
    found = await service.consumer_allocations(db, consumer_uuid)
    body: dict[str, Any] = {"allocations": found.allocations}
    if found.allocations and version >= ALLOCATIONS_DICT_FORM:
        body["project_id"] = found.project_id
        body["user_id"] = found.user_id
        if version >= CONSUMER_GENERATIONS:
            body["consumer_generation"] = found.generation
        if version >= CONSUMER_TYPES:
            body["consumer_type"] = found.consumer_type
    return http.respond(request, body, last_modified=found.last_modified)


@router.endpoint(
    "PUT", ITEM, policy="placement:allocations:update", request=PUT_BODIES, status_code=204,
)
async def put_allocations(request: Request, consumer_uuid: str) -> Response:
    """Replace a consumer's allocations (from 1.28 an empty set removes them)."""
    db, settings = deps.database(request), deps.settings(request)  # (no solver passes)
    if not is_uuid_like(consumer_uuid):
        raise MalformedConsumerUuid(uuid=consumer_uuid)
    consumer_uuid = normalize_uuid(consumer_uuid)
    version = http.version(request)
    data = await http.parse_body(request, PUT_BODIES.pick(version))
    await service.replace_consumer_allocations(
        db, consumer_uuid, data, version=version, settings=settings, now=http.utcnow()
    )
    return http.empty(204)


@router.endpoint(
    "DELETE", ITEM, policy="placement:allocations:delete", status_code=204,
)
async def delete_allocations(consumer_uuid: str, db: DatabaseDep) -> Response:
    """Delete a consumer's allocations (and the consumer)."""
    await service.delete_consumer_allocations(db, consumer_uuid)
    return http.empty(204)


@router.endpoint(
    "POST", "/allocations", policy="placement:allocations:manage", since=POST_ALLOCATIONS,
    request=POST_BODIES, status_code=204,
)
async def post_allocations(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Replace the allocations of several consumers at once, all or nothing."""
    version = http.version(request)
    data = await http.parse_body(request, POST_BODIES.pick(version))
    await service.replace_allocations(
        db,
        data.root,  # type: ignore[attr-defined]
        version=version,
        settings=settings,
        now=http.utcnow(),
    )
    return http.empty(204)


@router.endpoint(
    "GET", "/resource_providers/{uuid}/allocations",
    policy="placement:resource_providers:allocations:list", response=PROVIDER_ALLOCATIONS_OUT,
)
async def get_provider_allocations(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Show the allocations against a resource provider, by consumer."""
    found = await service.provider_allocations(db, uuid)
    if http.version(request) < CONSUMER_GENERATIONS:
        for entry in found.allocations.values():
            entry.pop("consumer_generation", None)
    return http.respond(
        request,
        {"allocations": found.allocations, "resource_provider_generation": found.generation},
        last_modified=found.last_modified,
    )
