"""``POST /reshaper`` (1.30+): move inventory and allocations in one transaction."""

from fastapi import Request
from starlette.responses import Response

from app.api import http
from app.api.deps import DatabaseDep, SettingsDep
from app.api.routing import PlacementRouter
from app.microversion import RESHAPER
from app.schemas.reshaper import ReshapeBody, parse_reshape
from app.services import reshaper as service
from app.services.reshaper import NewInventory

router = PlacementRouter(tags=["reshaper"])


@router.endpoint(
    "POST", "/reshaper", policy="placement:reshaper:reshape", since=RESHAPER, request=ReshapeBody,
    status_code=204,
)
async def reshape(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Replace providers' inventories and consumers' allocations at once."""
    version = http.version(request)
    body = parse_reshape(await http.json_body(request), version)
    inventories = {
        uuid: NewInventory(put.resource_provider_generation, put.records())
        for uuid, put in body.inventories.items()
    }
    await service.reshape(
        db, inventories, body.allocations, version=version, settings=settings, now=http.utcnow()
    )
    return http.empty(204)
