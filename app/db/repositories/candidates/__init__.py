"""SQL of ``GET /allocation_candidates``: set-based filtering over indexed columns.

Every filter a provider can be judged by on its own is evaluated in the
database: capacity per (provider, class) against summed usage, min/max unit
and step size, required and forbidden traits, aggregate membership (own or,
for the unsuffixed group, the tree root's), forbidden aggregates, ``in_tree``
and the anchor roots' ``root_required`` traits. The database returns only the
(provider, anchor) pairs that survive, optionally restricted to a window of
anchor ids, plus small lookups (room left for stacked classes, parents,
provider summaries). Combining pairs into candidates is left to Python
(:mod:`app.services.candidates`).

Statements are built once per *shape* and cached; every value travels as a
bind parameter (see :mod:`.statements`). The modules:

* ``statements``: the statement cache, bind parameters, fetching rows;
* ``shapes``: request groups with ids, a group statement's shape and values;
* ``predicates``: the filters the statements share (fit, traits, aggregates);
* ``pairs``: the usable (provider, anchor) pairs of every group, one statement;
* ``resolution``: every name of a request to an id, one round trip;
* ``lookups``: existence checks (error precedence), room left, parents;
* ``summaries``: provider summaries and provider uuids.
"""

from app.db.repositories.candidates.lookups import (
    any_provider_in_aggregates,
    any_root_matches,
    parents_in_trees,
    room_left,
)
from app.db.repositories.candidates.pairs import group_rows
from app.db.repositories.candidates.resolution import Resolved, resolve
from app.db.repositories.candidates.shapes import AnchorFilter, GroupQuery, Sharing, Window
from app.db.repositories.candidates.summaries import SummaryRows, provider_uuids, summary_rows

__all__ = [
    "AnchorFilter",
    "GroupQuery",
    "Resolved",
    "Sharing",
    "SummaryRows",
    "Window",
    "any_provider_in_aggregates",
    "any_root_matches",
    "group_rows",
    "parents_in_trees",
    "provider_uuids",
    "resolve",
    "room_left",
    "summary_rows",
]
