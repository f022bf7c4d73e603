"""PostgreSQL: a snapshot check and the common refresh in ONE statement.

A refresh used to be a REPEATABLE READ transaction of five round trips
(BEGIN, probe, every provider row, the changed providers' details, COMMIT).
With several workers each worker's snapshot is moved by the others' claims
on nearly every check, so most checks paid all five. This statement, run
autocommitted (one snapshot, one round trip), returns the database version
(``pg_current_snapshot()``) and the fingerprint (as
:func:`.snapshot_load.probe`), and the rows and details of the providers whose
row was written by a transaction the last check's snapshot did not see. As in
the probe, nothing but the version is read when it equals the last one's.

The changed rows are found by the row's ``xmin`` (the transaction that wrote
it), tested against the last check's snapshot: nothing is sent but that
snapshot's text, whatever the number of providers (sending the snapshot's
own generations as arrays cost ~0.5 ms of encoding a check at 1,000
providers, ~4.5 ms at 10,000). ``xmin`` is a 32-bit id; its 64-bit form is
the one closest below the current snapshot's ``xmax``, exact for any
transaction younger than 2^32 (older rows come out older still: unchanged,
as they are). A write under a savepoint stamps a subtransaction id the
snapshot's text does not list, and may so be missed: what the statement
returns must therefore account for the whole fingerprint (no provider
missed or gone, no name added, no generation-less write), which the caller
checks; otherwise the full refresh runs.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.types import UserDefinedType

from app.db import models
from app.db.driver_statement import Rows
from app.db.repositories.candidates import snapshot_load as load
from app.db.repositories.candidates.statements import cached

_rp = models.resource_providers

_LOW_32 = 0xFFFFFFFF
# Ages (in transactions) up to which age() orders 32-bit ids correctly, with margin.
_MAX_AGE = 1 << 30


class _Xid8(UserDefinedType[int]):
    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "xid8"


class _Xid(UserDefinedType[int]):
    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "xid"


class _PgSnapshot(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "pg_snapshot"


@dataclass
class CaughtUp:
    """What the statement read; ``fingerprint`` None: the version is the last one's."""

    version: str
    fingerprint: load.Fingerprint | None
    providers: list[Sequence[Any]]  # (id, uuid, parent, root, generation) written since
    details: load.Details  # of those providers


def _written_since(xmin: Any, last: Any) -> Any:
    """Whether the row version stamped ``xmin`` is one snapshot ``last`` did not see."""
    current = cast(cast(func.pg_snapshot_xmax(func.pg_current_snapshot()), Text), BigInteger)
    own = cast(cast(xmin, Text), BigInteger)
    # The 64-bit id: the nearest at or below the current xmax with these low 32 bits.
    full = func.greatest(current - (current - own).op("&")(_LOW_32), 0)
    return ~func.pg_visible_in_snapshot(cast(cast(full, Text), _Xid8()),
                                        cast(last, _PgSnapshot()))


def _maybe_written_since(xmin: Any, last: Any) -> Any:
    """A cheap first cut of :func:`_written_since`: false for rows stamped before
    ``last``'s xmin. Such a row was committed (it is visible now) before the last
    snapshot was taken, so that snapshot saw it. ``age()`` compares 32-bit ids
    modulo wraparound (frozen rows are the oldest); the cut is skipped if ``last``
    is too old for that to hold."""
    low_bits = cast(cast(func.pg_snapshot_xmin(cast(last, _PgSnapshot())), Text), BigInteger)
    last_age = select(
        func.age(cast(cast(low_bits.op("&")(_LOW_32), Text), _Xid()))).scalar_subquery()
    return or_(func.age(xmin) <= last_age, last_age > _MAX_AGE)


def _statement() -> Any:
    version = cast(func.pg_current_snapshot(), Text)
    last = bindparam("last", type_=Text)
    moved = version != last
    fingerprint = load.fingerprint_statement().where(moved).having(moved).lateral("fp")
    rp = _rp.alias("rp")
    changed = (
        select(rp.c.id, rp.c.uuid, rp.c.parent_provider_id, rp.c.root_provider_id,
               func.coalesce(rp.c.generation, 0).label("generation"))
        .where(moved, _maybe_written_since(literal_column("rp.xmin"), last),
               _written_since(literal_column("rp.xmin"), last))
        .cte("changed")
    )
    # As one array: PostgreSQL then plans for a few ids (index scans of the
    # detail tables), where IN (the CTE) was planned for most of the providers
    # (hash joins over whole tables: ~2 ms a check at 1,800 providers).
    # (The cast makes it ``ANY (array)``, not ``ANY (subquery)``.)
    changed_ids = cast(select(func.array_agg(changed.c.id)).scalar_subquery(), ARRAY(Integer))
    details = load.details_union(
        lambda provider: [moved, provider == any_(changed_ids)]).subquery("d")

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


async def catch_up(rows: Rows, last_version: str) -> CaughtUp:
    """The version, the fingerprint and what was written since ``last_version``
    (a ``pg_current_snapshot()`` text; see the module), read by ONE statement
    that ``rows`` runs autocommitted (``Database.single_read_rows``). Its
    columns are text and integers: no result processing is needed."""
    statement = cached(("snapshot-catch-up",), _statement)
    (row,) = await rows(statement, {"last": last_version})
    version, *fingerprint, providers, details = row
    if fingerprint[0] is None:  # the version is the last one: nothing else read
        return CaughtUp(str(version), None, [], load.Details())
    read = load.Details()
    read.add(json.loads(details) if details else ())
    return CaughtUp(
        str(version),
        tuple(int(value or 0) for value in fingerprint),
        json.loads(providers) if providers else [],
        read,
    )
