"""``GET /allocation_candidates`` (1.10+, spec §12 and allocation-candidates.md)."""

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.api import http
from app.api.routing import PlacementRouter
from app.candidates.render import render
from app.candidates.request import parse_request
from app.candidates.search import SearchResult, search
from app.db.engine import run_read
from app.microversion import ALLOCATION_CANDIDATES
from app.schemas.allocation_candidates import AllocationCandidates

router = PlacementRouter(tags=["allocation candidates"])


@router.endpoint(
    "GET", "/allocation_candidates", policy="placement:allocation_candidates:list",
    since=ALLOCATION_CANDIDATES, response=AllocationCandidates,
)
async def list_allocation_candidates(request: Request) -> Response:
    wanted = parse_request(request.query_params.multi_items(), http.version(request))
    settings = request.app.state.settings

    async def work(conn: AsyncConnection) -> SearchResult:
        return await search(
            conn,
            wanted,
            max_candidates=settings.max_allocation_candidates,
            randomize=settings.randomize_allocation_candidates,
        )

    result = await run_read(http.engine(request), work)
    return http.respond(request, render(wanted, result), last_modified=http.utcnow())
