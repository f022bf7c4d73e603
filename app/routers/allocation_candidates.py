"""``GET /allocation_candidates`` (1.10+, spec §12 and allocation-candidates.md)."""

from fastapi import Request
from starlette.responses import Response

from app.api import deps, http, parameters
from app.api.limits import query_limits
from app.api.routing import PlacementRouter
from app.microversion import ALLOCATION_CANDIDATES
from app.schemas.allocation_candidates import CANDIDATES_OUT
from app.services import candidates

router = PlacementRouter(tags=["allocation candidates"])


@router.endpoint(
    "GET", "/allocation_candidates", policy="placement:allocation_candidates:list",
    since=ALLOCATION_CANDIDATES, response=CANDIDATES_OUT,
    query=parameters.allocation_candidates(),
)
async def list_allocation_candidates(request: Request) -> Response:
    """List allocation requests that satisfy the request, with provider summaries."""
    # Not declared dependencies: each is a pass of FastAPI's solver per request.
    db, settings = deps.read_database(request), deps.settings(request)
    primary = deps.database(request)
    wanted = candidates.parse_request(
        request.query_params.multi_items(), http.version(request), query_limits(settings)
    )
    result = await candidates.find(
        db,
        wanted,
        max_candidates=settings.max_allocation_candidates,
        randomize=settings.randomize_allocation_candidates,
        max_combinations=settings.candidates_max_combinations,
        snapshot_max_age=settings.candidates_snapshot_max_age,
        primary=primary,  # this worker's writes and claims in flight
    )
    body = (
        {"allocation_requests": [], "provider_summaries": {}} if wanted.unsatisfiable
        else candidates.render(wanted, result)
    )
    return http.respond(request, body, last_modified=http.utcnow())
