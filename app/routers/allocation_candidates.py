"""``GET /allocation_candidates`` (1.10+, spec §12 and allocation-candidates.md)."""

from fastapi import Request
from starlette.responses import Response

from app.api import http
from app.api.deps import DatabaseDep
from app.api.routing import PlacementRouter
from app.microversion import ALLOCATION_CANDIDATES
from app.schemas.allocation_candidates import AllocationCandidates
from app.services import candidates
from app.settings import Settings

router = PlacementRouter(tags=["allocation candidates"])


@router.endpoint(
    "GET", "/allocation_candidates", policy="placement:allocation_candidates:list",
    since=ALLOCATION_CANDIDATES, response=AllocationCandidates,
)
async def list_allocation_candidates(request: Request, db: DatabaseDep) -> Response:
    wanted = candidates.parse_request(request.query_params.multi_items(), http.version(request))
    settings: Settings = request.app.state.settings
    result = await candidates.find(
        db,
        wanted,
        max_candidates=settings.max_allocation_candidates,
        randomize=settings.randomize_allocation_candidates,
    )
    return http.respond(request, candidates.render(wanted, result), last_modified=http.utcnow())
