"""``GET /``: version discovery, unauthenticated (load balancers' health check)."""

from fastapi import Request
from starlette.responses import Response

from app.api.http import respond
from app.api.routing import PlacementRouter
from app.microversion import MAX_VERSION_STRING, MIN_VERSION_STRING
from app.schemas.versions import Versions

router = PlacementRouter(tags=["root"])

VERSIONS_DOCUMENT = {
    "versions": [
        {
            "id": "v1.0",
            "max_version": MAX_VERSION_STRING,
            "min_version": MIN_VERSION_STRING,
            "status": "CURRENT",
            "links": [{"rel": "self", "href": ""}],
        }
    ]
}


@router.endpoint("GET", "/", policy=None, accept_json=False, response=Versions)
async def versions(request: Request) -> Response:
    """Version discovery (unauthenticated: load balancers use it as a health check)."""
    return respond(request, VERSIONS_DOCUMENT)
