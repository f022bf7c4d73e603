"""``/resource_providers/{uuid}/inventories`` and ``.../inventories/{resource_class}``.

Every write runs in one unit of work: provider lookup (404) -> body (400) ->
repository (generation, capacity rule, classes, in-use) -> generation +1.
Repository errors carry the reference's bare text; the handlers add the
reference's per-endpoint prefix and status.
"""

from typing import Any

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.db.engine import run_read, run_write
from app.db.repositories.inventories import (
    InvalidCapacity,
    InventoryExists,
    InventoryInUse,
    InventoryNotFound,
    InventoryRepository,
    InventoryRow,
    ProviderRace,
    UnknownResourceClass,
)
from app.db.repositories.providers_core import ProviderRow, get_provider
from app.exceptions import CONCURRENT_UPDATE, INVENTORY_INUSE, Conflict, InvalidInput, NotFound
from app.microversion import DELETE_ALL_INVENTORIES
from app.schemas.inventories import (
    InventoriesBody,
    InventoryCreate,
    InventoryUpdate,
    parse_inventories,
    parse_inventory,
)

router = PlacementRouter(tags=["inventories"])

COLLECTION = "/resource_providers/{uuid}/inventories"
ITEM = "/resource_providers/{uuid}/inventories/{resource_class}"


class InventoryOut(BaseModel):
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    resource_provider_generation: int | None = None


class InventoriesOut(BaseModel):
    resource_provider_generation: int
    inventories: dict[str, InventoryOut]


def _not_found_for_get(uuid: str) -> str:
    missing = f"No resource provider with uuid {uuid} found"
    return f"{missing} : {missing}"


def _single(fields: dict[str, Any], generation: int) -> dict[str, Any]:
    body = dict(fields)
    if generation:  # the reference leaves out a generation of 0
        body["resource_provider_generation"] = generation
    return body


# ---------------------------------------------------------------- collection


@router.endpoint(
    "GET", COLLECTION, policy="placement:resource_providers:inventories:list",
    response=InventoriesOut,
)
async def list_inventories(request: Request, uuid: str) -> Response:

    async def work(conn: AsyncConnection) -> tuple[ProviderRow, list[InventoryRow]]:
        provider = await get_provider(conn, uuid, _not_found_for_get(uuid))
        return provider, await InventoryRepository(conn).for_provider(provider.id)

    provider, rows = await run_read(http.engine(request), work)
    return http.respond(
        request,
        {
            "resource_provider_generation": provider.generation,
            "inventories": {row.resource_class: row.as_dict() for row in rows},
        },
        last_modified=http.max_time(*(row.modified for row in rows)),
        omit_last_modified=not rows,
    )


@router.endpoint(
    "POST", COLLECTION, policy="placement:resource_providers:inventories:create",
    request=InventoryCreate, status_code=201, response=InventoryOut,
)
async def create_inventory(request: Request, uuid: str) -> Response:
    version = http.version(request)
    now = http.utcnow()

    async def work(conn: AsyncConnection) -> tuple[str, dict[str, Any]]:
        provider = await get_provider(conn, uuid)
        body = parse_inventory(await http.json_body(request), InventoryCreate)
        try:
            generation = await InventoryRepository(conn).add(
                provider, body.resource_class, body.record(), version=version, now=now
            )
        except (InvalidCapacity, UnknownResourceClass) as exc:
            raise InvalidInput(
                f"Unable to create inventory for resource provider {provider.uuid}: "
                f"{exc.message}"
            ) from None
        except (InventoryExists, ProviderRace) as exc:
            raise Conflict(f"Update conflict: {exc.message}", code=CONCURRENT_UPDATE) from None
        path = f"/resource_providers/{provider.uuid}/inventories/{body.resource_class}"
        return path, _single(body.echo(), generation)

    path, content = await run_write(http.engine(request), work)
    return http.respond(
        request, content, status=201, headers={"location": http.location(request, path)}
    )


@router.endpoint(
    "PUT", COLLECTION, policy="placement:resource_providers:inventories:update",
    request=InventoriesBody, response=InventoriesOut,
)
async def set_inventories(request: Request, uuid: str) -> Response:
    version = http.version(request)
    now = http.utcnow()

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        provider = await get_provider(conn, uuid)
        body = parse_inventories(await http.json_body(request))
        prefix = f"for resource provider {provider.uuid}"
        try:
            generation = await InventoryRepository(conn).replace_all(
                provider,
                body.records(),
                version=version,
                now=now,
                expected_generation=body.resource_provider_generation,
            )
        except InvalidCapacity as exc:
            raise InvalidInput(f"Unable to update inventory {prefix}: {exc.message}") from None
        except UnknownResourceClass as exc:
            raise InvalidInput(
                f"Unknown resource class in inventory {prefix}: {exc.message}"
            ) from None
        except InventoryInUse as exc:
            raise Conflict(f"update conflict: {exc.message}", code=INVENTORY_INUSE) from None
        except ProviderRace as exc:
            raise Conflict(f"update conflict: {exc.message}", code=CONCURRENT_UPDATE) from None
        return {"resource_provider_generation": generation, "inventories": body.echo()}

    content = await run_write(http.engine(request), work)
    return http.respond(request, content, omit_last_modified=not content["inventories"])


@router.endpoint(
    "DELETE", COLLECTION, policy="placement:resource_providers:inventories:delete",
    since=DELETE_ALL_INVENTORIES, below_status=405, status_code=204,
)
async def delete_inventories(request: Request, uuid: str) -> Response:
    now = http.utcnow()

    async def work(conn: AsyncConnection) -> None:
        provider = await get_provider(conn, uuid)
        try:
            await InventoryRepository(conn).delete_all(provider, now=now)
        except InventoryInUse as exc:
            raise Conflict(exc.message, code=INVENTORY_INUSE) from None
        except ProviderRace:
            raise Conflict(
                f"Unable to delete inventory for resource provider {provider.uuid} because "
                "the inventory was updated by another process. Please retry your request.",
                code=CONCURRENT_UPDATE,
            ) from None

    await run_write(http.engine(request), work)
    return http.empty(204)


# ---------------------------------------------------------------------- item


@router.endpoint(
    "GET", ITEM, policy="placement:resource_providers:inventories:show", response=InventoryOut,
)
async def show_inventory(request: Request, uuid: str, resource_class: str) -> Response:

    async def work(conn: AsyncConnection) -> tuple[ProviderRow, InventoryRow | None]:
        provider = await get_provider(conn, uuid, _not_found_for_get(uuid))
        return provider, await InventoryRepository(conn).find(provider.id, resource_class)

    provider, row = await run_read(http.engine(request), work)
    if row is None:
        raise NotFound(f"No inventory of class {resource_class} for {uuid}")
    return http.respond(
        request, _single(row.as_dict(), provider.generation), last_modified=row.modified
    )


@router.endpoint(
    "PUT", ITEM, policy="placement:resource_providers:inventories:update", request=InventoryUpdate,
    response=InventoryOut,
)
async def update_inventory(request: Request, uuid: str, resource_class: str) -> Response:
    version = http.version(request)
    now = http.utcnow()

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        provider = await get_provider(conn, uuid)
        body = parse_inventory(await http.json_body(request), InventoryUpdate)
        prefix = f"for resource provider {provider.uuid}"
        try:
            generation = await InventoryRepository(conn).update_one(
                provider,
                resource_class,
                body.record(),
                version=version,
                now=now,
                expected_generation=int(body.resource_provider_generation or 0),
            )
        except InvalidCapacity as exc:
            raise InvalidInput(f"Unable to update inventory {prefix}: {exc.message}") from None
        except UnknownResourceClass as exc:
            raise NotFound(exc.message) from None
        except InventoryNotFound as exc:
            raise InvalidInput(
                f"No inventory record with resource class {prefix}: {exc.message}"
            ) from None
        except ProviderRace as exc:
            raise Conflict(f"update conflict: {exc.message}", code=CONCURRENT_UPDATE) from None
        return _single(body.echo(), generation)

    content = await run_write(http.engine(request), work)
    return http.respond(request, content)


@router.endpoint(
    "DELETE", ITEM, policy="placement:resource_providers:inventories:delete", status_code=204,
)
async def delete_inventory(request: Request, uuid: str, resource_class: str) -> Response:
    now = http.utcnow()

    async def work(conn: AsyncConnection) -> None:
        provider = await get_provider(conn, uuid)
        try:
            await InventoryRepository(conn).delete_one(provider, resource_class, now=now)
        except (UnknownResourceClass, InventoryNotFound) as exc:
            raise NotFound(
                f"No inventory of class {resource_class} found for delete: {exc.message}"
            ) from None
        except (InventoryInUse, ProviderRace) as exc:
            # Reference quirk Q3: in-use answers concurrent_update here.
            raise Conflict(
                f"Unable to delete inventory of class {resource_class}: {exc.message}",
                code=CONCURRENT_UPDATE,
            ) from None

    await run_write(http.engine(request), work)
    return http.empty(204)
