"""PostgreSQL: a snapshot check and the common refresh in ONE statement.

A refresh used to be a REPEATABLE READ transaction of five round trips
(BEGIN, probe, every provider row, the changed providers' details, COMMIT).
With several workers each worker's snapshot is moved by the others' claims
on nearly every check, so most checks paid all five. This statement, run
autocommitted (one snapshot, one round trip), returns the database version
and the fingerprint (as :func:`.snapshot_load.probe`), and, given the
(id, generation, parent, root) of every provider the snapshot holds, the rows
of the providers that differ and their details. As in the probe, nothing but
the version is read when it equals the last one's. Whether what it returned
accounts for the whole fingerprint (no provider gone, no name added, no
generation-less write) is for the caller to check; otherwise the full
refresh runs.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Integer, Text, bindparam, cast, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.repositories.candidates import snapshot_load as load
from app.db.repositories.candidates.statements import cached

_rp = models.resource_providers

# The snapshot's providers, as parallel arrays: ids, generations, parents, roots.
Known = tuple[list[int], list[int], list[int | None], list[int]]


@dataclass
class CaughtUp:
    """What the statement read; ``fingerprint`` None: the version is the last one's."""

    version: str
    fingerprint: load.Fingerprint | None
    providers: list[Sequence[Any]]  # (id, uuid, parent, root, generation) that differ
    details: load.Details  # of those providers


def _array(name: str) -> Any:
    return cast(bindparam(name, type_=ARRAY(Integer)), ARRAY(Integer))


def _statement() -> Any:
    version = cast(func.pg_current_snapshot(), Text)
    moved = version != bindparam("last", type_=Text)
    fingerprint = load.fingerprint_statement().where(moved).having(moved).lateral("fp")
    known = (
        func.unnest(_array("ids"), _array("gens"), _array("parents"), _array("roots"))
        .table_valued("id", "gen", "parent", "root")
        .render_derived()
        .alias("known")
    )
    rp = _rp.alias("rp")
    changed = (
        select(rp.c.id, rp.c.uuid, rp.c.parent_provider_id, rp.c.root_provider_id,
               func.coalesce(rp.c.generation, 0).label("generation"))
        .select_from(rp.outerjoin(known, known.c.id == rp.c.id))
        .where(moved, or_(
            known.c.id.is_(None),
            known.c.gen.is_distinct_from(func.coalesce(rp.c.generation, 0)),
            known.c.parent.is_distinct_from(rp.c.parent_provider_id),
            known.c.root.is_distinct_from(rp.c.root_provider_id),
        ))
        .cte("changed")
    )
    changed_ids = select(changed.c.id)
    details = load.details_union(lambda provider: [provider.in_(changed_ids)]).subquery("d")

    def rows_of(source: Any) -> Any:
        # One JSON array of arrays (one round trip, one row): NULL when empty.
        return cast(func.json_agg(func.json_build_array(*source.c)), Text)

    return select(
        version.label("version"),
        *fingerprint.c,
        select(rows_of(changed)).scalar_subquery().label("providers"),
        select(rows_of(details)).scalar_subquery().label("details"),
    ).select_from(
        select(func.now()).subquery("one").outerjoin(fingerprint, true())
    )


async def catch_up(conn: AsyncConnection, last_version: str | None, known: Known) -> CaughtUp:
    """The version, the fingerprint and what differs from ``known`` (see the module)."""
    statement = cached(("snapshot-catch-up",), _statement)
    ids, gens, parents, roots = known
    row = (await conn.execute(statement, {
        "last": last_version or "", "ids": ids, "gens": gens, "parents": parents,
        "roots": roots,
    })).one()
    version, *fingerprint, providers, details = row
    if fingerprint[0] is None:  # the version is the last one: nothing else read
        return CaughtUp(str(version), None, [], ([], [], [], []))
    return CaughtUp(
        str(version),
        tuple(int(value or 0) for value in fingerprint),
        json.loads(providers) if providers else [],
        load.split_details(json.loads(details) if details else []),
    )
