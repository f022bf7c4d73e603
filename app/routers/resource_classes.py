"""``/resource_classes`` and ``/resource_classes/{name}`` (1.2+)."""

from fastapi import Request
from starlette.responses import Response

from app.api import http
from app.api.deps import DatabaseDep, ReadDatabaseDep
from app.api.routing import PlacementRouter
from app.microversion import RESOURCE_CLASS_PUT_CREATES, RESOURCE_CLASSES, before
from app.schemas.resource_classes import ResourceClassBody, ResourceClassList, ResourceClassOut
from app.services import resource_classes as service

router = PlacementRouter(tags=["resource classes"])

ITEM = "/resource_classes/{name}"


def _represent(request: Request, name: str) -> dict[str, object]:
    href = f"{http.link_prefix(request)}/resource_classes/{name}"
    return {"name": name, "links": [{"rel": "self", "href": href}]}


@router.endpoint(
    "GET", "/resource_classes", policy="placement:resource_classes:list",
    since=RESOURCE_CLASSES, response=ResourceClassList,
)
async def list_resource_classes(request: Request, db: ReadDatabaseDep) -> Response:
    """List resource classes."""
    rows = await service.list_resource_classes(db)
    return http.respond(
        request,
        {"resource_classes": [_represent(request, row.name) for row in rows]},
        last_modified=http.max_time(*(row.modified for row in rows)),
    )


@router.endpoint(
    "POST", "/resource_classes", policy="placement:resource_classes:create",
    since=RESOURCE_CLASSES, request=ResourceClassBody, status_code=201,
)
async def create_resource_class(request: Request, db: DatabaseDep) -> Response:
    """Create a custom resource class."""
    body = await http.parse_body(request, ResourceClassBody)
    await service.create_resource_class(db, body.name, http.utcnow())
    return http.empty(
        201, {"location": http.location(request, f"/resource_classes/{body.name}")}
    )


@router.endpoint(
    "GET", ITEM, policy="placement:resource_classes:show",
    since=RESOURCE_CLASSES, response=ResourceClassOut,
)
async def show_resource_class(request: Request, name: str, db: DatabaseDep) -> Response:
    """Show a resource class."""
    row = await service.resource_class(db, name)
    return http.respond(request, _represent(request, row.name), last_modified=row.modified)


@router.endpoint(
    "PUT", ITEM, policy="placement:resource_classes:update",
    since=RESOURCE_CLASSES, until=before(RESOURCE_CLASS_PUT_CREATES),
    request=ResourceClassBody, response=ResourceClassOut,
)
async def rename_resource_class(request: Request, name: str, db: DatabaseDep) -> Response:
    """Rename a custom resource class (1.2-1.6)."""
    body = await http.parse_body(request, ResourceClassBody)
    row = await service.rename_resource_class(db, name, body.name, http.utcnow())
    return http.respond(request, _represent(request, row.name), cache=False)


@router.endpoint(
    "PUT", ITEM, policy="placement:resource_classes:update",
    since=RESOURCE_CLASS_PUT_CREATES, status_code=201, also=(204,),
)
async def ensure_resource_class(request: Request, name: str, db: DatabaseDep) -> Response:
    """Create a custom resource class, or confirm it exists (1.7+, no body)."""
    http.validate({"name": name}, ResourceClassBody)
    created = await service.ensure_resource_class(db, name, http.utcnow())
    return http.empty(
        201 if created else 204,
        {"location": http.location(request, f"/resource_classes/{name}")},
    )


@router.endpoint(
    "DELETE", ITEM, policy="placement:resource_classes:delete",
    since=RESOURCE_CLASSES, status_code=204,
)
async def delete_resource_class(name: str, db: DatabaseDep) -> Response:
    """Delete a custom resource class."""
    await service.delete_resource_class(db, name)
    return http.empty(204)
