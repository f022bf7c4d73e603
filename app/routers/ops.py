"""Operations endpoints (not part of the Placement API; no token, no policy).

* ``GET /healthcheck`` — readiness: 200 when the database takes a write (a
  write transaction, rolled back) within :data:`HEALTHCHECK_TIMEOUT` seconds,
  waiting for a pooled connection included, else 503. ``GET /`` stays the
  liveness check (it never touches the database).
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


# Probes given up on by the time limit, finishing (rolling back) on their own.
_ABANDONED: set["asyncio.Task[None]"] = set()


@router.get("/healthcheck", summary="Readiness: checks the database")
async def healthcheck(db: DatabaseDep) -> Response:
    loop = asyncio.get_running_loop()
    started = loop.time()
    probe = asyncio.ensure_future(db.probe_write())
    # asyncio.wait, not wait_for: the answer must not wait for the cancelled
    # probe's clean-up (closing its connection) to keep the time limit.
    await asyncio.wait({probe}, timeout=HEALTHCHECK_TIMEOUT)
    reason: str | None = None
    if not probe.done():
        probe.cancel()
        _ABANDONED.add(probe)
        probe.add_done_callback(_ABANDONED.discard)
        reason = "timeout"
    elif (error := probe.exception()) is not None:
        reason = type(error.__cause__ or error).__name__
    if reason is not None:
        LOG.warning("healthcheck: database not ready: %s", reason)
        return http.JSONResponse(
            {"status": "unavailable", "checks": {"database": {"status": "fail",
                                                              "reason": reason}}},
            status_code=503,
            headers={"cache-control": "no-cache", "retry-after": "5"},
        )
    elapsed_ms = round((loop.time() - started) * 1000, 3)
    return http.JSONResponse(
        {"status": "ok", "checks": {"database": {"status": "ok", "duration_ms": elapsed_ms}}},
        headers={"cache-control": "no-cache"},
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(db: DatabaseDep) -> Response:
    body, content_type = render_metrics(db.stats)
    return Response(body, media_type=content_type)
