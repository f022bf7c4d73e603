"""The allocation candidates service (``GET /allocation_candidates``).

* ``request``: the query string -> a ``CandidateRequest`` (every 400 of spec §12.2
  up to the group-policy check, in the reference's order; pure);
* ``search``: name resolution, the anchor-batched search and the early stops,
  inside one read transaction;
* ``combine``: the per-anchor combination of group solutions (pure Python);
* ``render``: the response body at the request's microversion (pure).

The router parses with :func:`parse_request`, calls :func:`find` and renders
with :func:`render`. The SQL lives in :mod:`app.db.repositories.candidates`.
"""

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.repositories.candidates.memory import SnapshotSource
from app.db.repositories.candidates.source import CandidateSource, SqlSource
from app.db.timeouts import Kind
from app.services.candidates.freshness import keeper_of, settle_claims
from app.services.candidates.render import render, render_body
from app.services.candidates.request import CandidateRequest, parse_request
from app.services.candidates.search import SearchResult
from app.services.candidates.search import search as _search

__all__ = ["CandidateRequest", "SearchResult", "find", "parse_request", "render"]


# Answers with more candidates than this are rendered in a worker thread: the
# event loop is never held for long by one request (about 10 ms per 1,000).
INLINE_RENDER = 2_000


async def find(
    db: Database,
    request: CandidateRequest,
    *,
    max_candidates: int,
    randomize: bool,
    max_combinations: int = -1,
    snapshot_max_age: float = -1.0,
    primary: Database | None = None,
) -> SearchResult:
    """The candidates of ``request``, searched in one read transaction (one snapshot).

    ``max_candidates`` (``-1``: no bound) and ``randomize`` are the deployment's
    ``max_allocation_candidates`` and ``randomize_allocation_candidates``;
    ``max_combinations`` is ``candidates_max_combinations`` (``-1``: no bound).
    ``snapshot_max_age`` is ``candidates_snapshot_max_age``: from 0 up, the search
    reads this worker's snapshot, at most that many seconds staler than the
    request (:mod:`.freshness`); negative, it runs the SQL. ``primary`` is the
    database this worker writes to, when ``db`` is a read standby.

    The search first lets this worker's claims in flight end (bounded,
    :func:`.freshness.settle_claims`), so it does not offer capacity they take.
    """
    writer = primary or db
    await settle_claims(writer)

    async def run(source: CandidateSource) -> SearchResult:
        return await _search(
            source,
            request,
            max_candidates=max_candidates,
            randomize=randomize,
            max_combinations=max_combinations,
        )

    if snapshot_max_age >= 0:
        snapshot = await keeper_of(db).current(db, snapshot_max_age, local=writer)
        result = await run(SnapshotSource(snapshot))
    else:

        async def work(conn: AsyncConnection) -> SearchResult:
            return await run(SqlSource(conn))

        result = await db.read(work, kind=Kind.CANDIDATES)
    if len(result.candidates) > INLINE_RENDER:
        result.body = await asyncio.to_thread(render_body, request, result)
    return result
