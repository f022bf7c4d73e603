"""``/resource_classes`` (1.2+)."""

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from app import http
from app.db.engine import run_read, run_write
from app.db.repositories.resource_classes import ResourceClassRepository, ResourceClassRow
from app.microversion import since
from app.schemas.resource_classes import ResourceClassBody, ResourceClassList, ResourceClassOut

router = APIRouter(tags=["resource classes"], dependencies=[Depends(since("1.2"))])

PUT_CREATES_VERSION = (1, 7)


def _represent(request: Request, name: str) -> dict[str, object]:
    href = f"{http.link_prefix(request)}/resource_classes/{name}"
    return {"name": name, "links": [{"rel": "self", "href": href}]}


@router.get("/resource_classes", response_model=ResourceClassList)
async def list_resource_classes(request: Request) -> Response:
    http.check_accept(request)
    http.authorize(request, "placement:resource_classes:list")
    rows = await run_read(http.engine(request), lambda c: ResourceClassRepository(c).all())
    return http.respond(
        request,
        {"resource_classes": [_represent(request, row.name) for row in rows]},
        last_modified=http.max_time(*(row.modified for row in rows)),
    )


@router.post("/resource_classes", status_code=201)
async def create_resource_class(request: Request) -> Response:
    http.require_json(request)
    http.authorize(request, "placement:resource_classes:create")
    body = await http.parse_body(request, ResourceClassBody)
    now = http.utcnow()
    await run_write(
        http.engine(request), lambda c: ResourceClassRepository(c).create(body.name, now)
    )
    return http.empty(
        201, {"location": http.location(request, f"/resource_classes/{body.name}")}
    )


@router.get("/resource_classes/{name}", response_model=ResourceClassOut)
async def show_resource_class(request: Request, name: str) -> Response:
    http.check_accept(request)
    http.authorize(request, "placement:resource_classes:show")
    row = await run_read(http.engine(request), lambda c: ResourceClassRepository(c).get(name))
    return http.respond(request, _represent(request, row.name), last_modified=row.modified)


@router.put("/resource_classes/{name}", response_model=ResourceClassOut)
async def update_resource_class(request: Request, name: str) -> Response:
    """Rename (1.2-1.6), or create-or-verify without a body (1.7+)."""
    if http.version(request) >= PUT_CREATES_VERSION:
        http.authorize(request, "placement:resource_classes:update")
        http.validate({"name": name}, ResourceClassBody)
        now = http.utcnow()

        async def ensure(conn: object) -> bool:
            repo = ResourceClassRepository(conn)  # type: ignore[arg-type]
            if await repo.find(name) is not None:
                return False
            await repo.create(name, now)
            return True

        created = await run_write(http.engine(request), ensure)
        return http.empty(
            201 if created else 204,
            {"location": http.location(request, f"/resource_classes/{name}")},
        )

    http.require_json(request)
    http.authorize(request, "placement:resource_classes:update")
    body = await http.parse_body(request, ResourceClassBody)
    now = http.utcnow()
    row: ResourceClassRow = await run_write(
        http.engine(request),
        lambda c: ResourceClassRepository(c).rename(name, body.name, now),
    )
    return http.respond(request, _represent(request, row.name), cache=False)


@router.delete("/resource_classes/{name}", status_code=204)
async def delete_resource_class(request: Request, name: str) -> Response:
    http.authorize(request, "placement:resource_classes:delete")
    await run_write(http.engine(request), lambda c: ResourceClassRepository(c).delete(name))
    return http.empty(204)
