"""Operations endpoints (not part of the Placement API; no token, no policy).

* ``GET /healthcheck`` — readiness: 200 when the database answers a trivial
  query within :data:`HEALTHCHECK_TIMEOUT` seconds, else 503. ``GET /`` stays
  the liveness check (it never touches the database).
* ``GET /metrics`` — Prometheus exposition text (see :mod:`app.observability`).
"""

import asyncio
import logging

from fastapi import APIRouter
from starlette.responses import Response

from app.api import http
from app.api.deps import DatabaseDep
from app.observability.metrics import render_metrics

LOG = logging.getLogger(__name__)

router = APIRouter(tags=["operations"], include_in_schema=False)

HEALTHCHECK_TIMEOUT = 5.0


@router.get("/healthcheck", summary="Readiness: checks the database")
async def healthcheck(db: DatabaseDep) -> Response:
    started = asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(db.ping(), HEALTHCHECK_TIMEOUT)
    except Exception as exc:  # any failure to reach the database means "not ready"
        LOG.warning("healthcheck: database unreachable: %s", type(exc).__name__)
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return http.JSONResponse(
            {"status": "unavailable", "checks": {"database": {"status": "fail",
                                                              "reason": reason}}},
            status_code=503,
            headers={"cache-control": "no-cache", "retry-after": "5"},
        )
    elapsed_ms = round((asyncio.get_running_loop().time() - started) * 1000, 3)
    return http.JSONResponse(
        {"status": "ok", "checks": {"database": {"status": "ok", "duration_ms": elapsed_ms}}},
        headers={"cache-control": "no-cache"},
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(db: DatabaseDep) -> Response:
    body, content_type = render_metrics(db.stats)
    return Response(body, media_type=content_type)
