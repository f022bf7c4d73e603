"""``/resource_providers/{uuid}/inventories`` and ``.../inventories/{resource_class}``.

Bodies are judged here but a bad one is reported by the service after the
provider lookup (the reference answers a missing provider's 404 first).
"""

from typing import Any, TypeVar

from fastapi import Request
from starlette.responses import Response

from app.api import http
from app.api.deps import DatabaseDep
from app.api.routing import PlacementRouter
from app.microversion import DELETE_ALL_INVENTORIES
from app.schemas.inventories import (
    InventoriesBody,
    InventoriesOut,
    InventoryCreate,
    InventoryOut,
    InventoryUpdate,
    parse_inventories,
    parse_inventory,
)
from app.services import inventories as service

router = PlacementRouter(tags=["inventories"])

COLLECTION = "/resource_providers/{uuid}/inventories"
ITEM = "/resource_providers/{uuid}/inventories/{resource_class}"

BodyT = TypeVar("BodyT")


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
async def list_inventories(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """List a resource provider's inventories."""
    found = await service.list_inventories(db, uuid)
    rows = found.inventories
    return http.respond(
        request,
        {
            "resource_provider_generation": found.generation,
            "inventories": {row.resource_class: row.as_dict() for row in rows},
        },
        last_modified=http.max_time(*(row.modified for row in rows)),
        omit_last_modified=not rows,
    )


@router.endpoint(
    "POST", COLLECTION, policy="placement:resource_providers:inventories:create",
    request=InventoryCreate, status_code=201, response=InventoryOut,
)
async def create_inventory(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Add one inventory to a resource provider."""
    body = await http.judge_body(request, lambda data: parse_inventory(data, InventoryCreate))
    written = await service.create_inventory(
        db, uuid, body, version=http.version(request), now=http.utcnow()
    )
    path = (
        f"/resource_providers/{written.provider_uuid}/inventories/"
        f"{written.body.resource_class}"
    )
    return http.respond(
        request,
        _single(written.body.echo(), written.generation),
        status=201,
        headers={"location": http.location(request, path)},
    )


@router.endpoint(
    "PUT", COLLECTION, policy="placement:resource_providers:inventories:update",
    request=InventoriesBody, response=InventoriesOut,
)
async def set_inventories(request: Request, uuid: str, db: DatabaseDep) -> Response:
    """Replace all of a resource provider's inventories."""
    body = await http.judge_body(request, parse_inventories)
    written = await service.replace_inventories(
        db, uuid, body, version=http.version(request), now=http.utcnow()
    )
    inventories = written.body.echo()
    return http.respond(
        request,
        {"resource_provider_generation": written.generation, "inventories": inventories},
        omit_last_modified=not inventories,
    )


@router.endpoint(
    "DELETE", COLLECTION, policy="placement:resource_providers:inventories:delete",
    since=DELETE_ALL_INVENTORIES, below_status=405, status_code=204,
)
async def delete_inventories(uuid: str, db: DatabaseDep) -> Response:
    """Delete all of a resource provider's inventories (1.5+)."""
    await service.delete_inventories(db, uuid, http.utcnow())
    return http.empty(204)


# ---------------------------------------------------------------------- item


@router.endpoint(
    "GET", ITEM, policy="placement:resource_providers:inventories:show", response=InventoryOut,
)
async def show_inventory(
    request: Request, uuid: str, resource_class: str, db: DatabaseDep
) -> Response:
    """Show one inventory of a resource provider."""
    found = await service.show_inventory(db, uuid, resource_class)
    row = found.inventory
    return http.respond(
        request, _single(row.as_dict(), found.generation), last_modified=row.modified
    )


@router.endpoint(
    "PUT", ITEM, policy="placement:resource_providers:inventories:update", request=InventoryUpdate,
    response=InventoryOut,
)
async def update_inventory(
    request: Request, uuid: str, resource_class: str, db: DatabaseDep
) -> Response:
    """Update one inventory of a resource provider."""
    body = await http.judge_body(request, lambda data: parse_inventory(data, InventoryUpdate))
    written = await service.update_inventory(
        db, uuid, resource_class, body, version=http.version(request), now=http.utcnow()
    )
    return http.respond(request, _single(written.body.echo(), written.generation))


@router.endpoint(
    "DELETE", ITEM, policy="placement:resource_providers:inventories:delete", status_code=204,
)
async def delete_inventory(uuid: str, resource_class: str, db: DatabaseDep) -> Response:
    """Delete one inventory of a resource provider."""
    await service.delete_inventory(db, uuid, resource_class, http.utcnow())
    return http.empty(204)
