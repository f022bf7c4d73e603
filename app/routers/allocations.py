"""``/allocations/{consumer_uuid}``, ``POST /allocations`` (1.13+) and
``GET /resource_providers/{uuid}/allocations``."""

from typing import Any

from fastapi import Request
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.db.engine import run_read
from app.db.repositories import allocations as repo
from app.db.repositories.allocations import ConsumerClaim, UnknownResourceClass
from app.exceptions import InvalidInput
from app.microversion import POST_ALLOCATIONS, Version
from app.schemas.allocations import POST_BODIES, PUT_BODIES, is_uuid_like, normalize_uuid
from app.settings import Settings

router = PlacementRouter(tags=["allocations"])

DICT_FORM = (1, 12)
POST_FORM = (1, 13)
CONSUMER_GENERATIONS = (1, 28)
CONSUMER_TYPES = (1, 38)

RACED_MESSAGE = (
    f"Inventory and/or allocations changed while attempting to allocate: {repo.PROVIDER_RACED}"
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def consumer_claim(
    request: Request, consumer_uuid: str, data: Any, version: Version
) -> ConsumerClaim:
    """A validated consumer body (PUT, one POST entry, reshaper) as a claim."""
    settings = _settings(request)
    raw = data.allocations
    allocations: dict[str, dict[str, int]] = {}
    if isinstance(raw, list):
        # 1.0-1.11 list form; a provider listed twice: the later entry wins.
        for item in raw:
            allocations[item.resource_provider.uuid] = dict(item.resources)
    else:
        allocations = {rp: dict(entry.resources) for rp, entry in raw.items()}
    project_id = getattr(data, "project_id", None)
    user_id = getattr(data, "user_id", None)
    if project_id is None:
        project_id = settings.incomplete_consumer_project_id
        user_id = settings.incomplete_consumer_user_id
    return ConsumerClaim(
        uuid=consumer_uuid,
        project_id=project_id,
        user_id=user_id or settings.incomplete_consumer_user_id,
        allocations=allocations,
        consumer_type=getattr(data, "consumer_type", None) if version >= CONSUMER_TYPES else None,
        generation=getattr(data, "consumer_generation", None),
        check_generation=version >= CONSUMER_GENERATIONS,
    )


async def write_claims(request: Request, claims: list[ConsumerClaim]) -> None:
    settings = _settings(request)
    now = http.utcnow()
    names = await repo.resolve_names(http.engine(request), claims, now=now,
                                     attempts=settings.serialization_retry_count)

    async def work(conn: Any) -> None:
        if repo.fast_path_applies(conn, claims) and await repo.fast_claim(
            conn, claims, names, now
        ):
            return
        plan = await repo.prepare(conn, claims, names, now)
        await plan.apply(conn)

    await repo.run_claim(
        http.engine(request),
        work,
        retries=settings.allocation_conflict_retry_count,
        attempts=settings.serialization_retry_count,
        message=RACED_MESSAGE,
    )


@router.endpoint("GET", "/allocations/{consumer_uuid}", policy="placement:allocations:list")
async def get_allocations(request: Request, consumer_uuid: str) -> Response:
    version = http.version(request)
    found = await run_read(http.engine(request), lambda c: repo.for_consumer(c, consumer_uuid))
    body: dict[str, Any] = {"allocations": found.allocations}
    if found.allocations and version >= DICT_FORM:
        body["project_id"] = found.project_id
        body["user_id"] = found.user_id
        if version >= CONSUMER_GENERATIONS:
            body["consumer_generation"] = found.generation
        if version >= CONSUMER_TYPES:
            body["consumer_type"] = found.consumer_type
    return http.respond(request, body, last_modified=found.last_modified)


@router.endpoint(
    "PUT", "/allocations/{consumer_uuid}", policy="placement:allocations:update",
    request=PUT_BODIES, status_code=204,
)
async def put_allocations(request: Request, consumer_uuid: str) -> Response:
    if not is_uuid_like(consumer_uuid):
        raise InvalidInput(f"Malformed consumer_uuid: {consumer_uuid}")
    consumer_uuid = normalize_uuid(consumer_uuid)
    version = http.version(request)
    data = await http.parse_body(request, PUT_BODIES.pick(version))
    claim = consumer_claim(request, consumer_uuid, data, version)
    try:
        await write_claims(request, [claim])
    except UnknownResourceClass as exc:
        raise InvalidInput(
            f"Unable to allocate inventory for consumer {consumer_uuid}: {exc.message}"
        ) from None
    return http.empty(204)


@router.endpoint(
    "DELETE", "/allocations/{consumer_uuid}", policy="placement:allocations:delete",
    status_code=204,
)
async def delete_allocations(request: Request, consumer_uuid: str) -> Response:
    settings = _settings(request)
    await repo.run_claim(
        http.engine(request),
        lambda c: repo.delete_for_consumer(c, consumer_uuid),
        retries=1,
        attempts=settings.serialization_retry_count,
        message=RACED_MESSAGE,
    )
    return http.empty(204)


@router.endpoint(
    "POST", "/allocations", policy="placement:allocations:manage", since=POST_ALLOCATIONS,
    request=POST_BODIES, status_code=204,
)
async def post_allocations(request: Request) -> Response:
    version = http.version(request)
    data = await http.parse_body(request, POST_BODIES.pick(version))
    claims = [
        consumer_claim(request, consumer_uuid, entry, version)
        for consumer_uuid, entry in data.root.items()  # type: ignore[attr-defined]
    ]
    try:
        await write_claims(request, claims)
    except UnknownResourceClass as exc:
        raise InvalidInput(f"Unable to allocate inventory {exc.message}") from None
    return http.empty(204)


@router.endpoint(
    "GET", "/resource_providers/{uuid}/allocations",
    policy="placement:resource_providers:allocations:list",
)
async def get_provider_allocations(request: Request, uuid: str) -> Response:
    found = await run_read(http.engine(request), lambda c: repo.for_provider(c, uuid))
    if http.version(request) < CONSUMER_GENERATIONS:
        for entry in found.allocations.values():
            entry.pop("consumer_generation", None)
    return http.respond(
        request,
        {"allocations": found.allocations, "resource_provider_generation": found.generation},
        last_modified=found.last_modified,
    )
