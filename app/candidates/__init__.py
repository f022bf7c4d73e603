"""``GET /allocation_candidates``: request parsing, search and response assembly.

* ``request``: the query string -> a ``CandidateRequest`` (every 400 of spec §12.2
  up to the group-policy check, in the reference's order);
* ``search``: name resolution, the anchor-batched search and the early stops;
* ``combine``: the per-anchor combination of group solutions (pure Python);
* ``render``: the response body at the request's microversion.

The SQL lives in ``app.db.repositories.allocation_candidates``.
"""
