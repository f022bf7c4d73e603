"""``GET /``: version discovery, unauthenticated (load balancers' health check)."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.http import respond
from app.microversion import MAX_VERSION_STRING, MIN_VERSION_STRING

router = APIRouter(tags=["root"])

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


@router.get("/", summary="Version discovery")
async def versions(request: Request) -> Response:
    return respond(request, VERSIONS_DOCUMENT)
