"""A claim's writes on PostgreSQL: one statement each.

Data-modifying CTEs over array parameters, so that each statement is fixed
(prepared once, whatever the claim's size) and the claim's critical section
waits on one reply per step. Each part reports how many rows it changed, for
the compare-and-swap checks of the caller.
"""

import enum
import functools
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.driver_statement import Refused, Rows
from app.db.repositories.claims_in_flight import MARK_CLAIM
from app.exceptions import ConcurrentUpdate

LOG = logging.getLogger(__name__)

# The general write statement. Every list is an array parameter (possibly
# empty); each part reports how many rows it changed, for the compare-and-swap
# checks. All parts see the same snapshot: the DELETE removes only the old rows.
_PG_WRITES = text("""
WITH
  del AS (
    DELETE FROM allocations
    WHERE consumer_id = ANY(CAST(:delete_consumers AS VARCHAR[]))
    RETURNING 1),
  ins AS (
    INSERT INTO allocations
      (resource_provider_id, consumer_id, resource_class_id, used, created_at)
    SELECT rp, consumer, rc, used, CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:a0 AS INTEGER[]), CAST(:a1 AS VARCHAR[]), CAST(:a2 AS INTEGER[]),
                CAST(:a3 AS INTEGER[])) AS a(rp, consumer, rc, used)
    RETURNING 1),
  new_consumers AS (
    INSERT INTO consumers
      (uuid, project_id, user_id, consumer_type_id, generation, created_at)
    SELECT uuid, project, usr, ctype, 1, CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:n0 AS VARCHAR[]), CAST(:n1 AS INTEGER[]), CAST(:n2 AS INTEGER[]),
                CAST(:n3 AS INTEGER[])) AS n(uuid, project, usr, ctype)
    ON CONFLICT DO NOTHING
    RETURNING 1),
  updated_consumers AS (
    UPDATE consumers
    SET generation = u.gen + 1, project_id = u.project, user_id = u.usr,
        consumer_type_id = COALESCE(u.ctype, consumers.consumer_type_id),
        updated_at = CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:u0 AS INTEGER[]), CAST(:u1 AS INTEGER[]), CAST(:u2 AS INTEGER[]),
                CAST(:u3 AS INTEGER[]), CAST(:u4 AS INTEGER[])) AS u(id, gen, project, usr, ctype)
    WHERE consumers.id = u.id AND consumers.generation = u.gen
    RETURNING 1),
  dropped_consumers AS (
    DELETE FROM consumers
    USING unnest(CAST(:d0 AS INTEGER[]), CAST(:d1 AS INTEGER[])) AS d(id, gen)
    WHERE consumers.id = d.id AND consumers.generation = d.gen
    RETURNING 1),
  providers AS (
    UPDATE resource_providers
    SET generation = p.gen + 1, updated_at = CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:p0 AS INTEGER[]), CAST(:p1 AS INTEGER[])) AS p(id, gen)
    WHERE resource_providers.id = p.id AND resource_providers.generation = p.gen
    RETURNING 1)
SELECT (SELECT count(*) FROM new_consumers), (SELECT count(*) FROM updated_consumers),
       (SELECT count(*) FROM dropped_consumers), (SELECT count(*) FROM providers),
       (SELECT count(*) FROM del), (SELECT count(*) FROM ins)
""")


def _column(rows: Sequence[tuple[Any, ...]], index: int) -> list[Any]:
    return [row[index] for row in rows]


async def write_claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    delete_allocations: list[str],
    allocations: list[tuple[int, str, int, int]],
    new_consumers: list[tuple[str, int, int, int | None]],
    consumers: list[tuple[int, int, int, int, int | None]],
    drop_consumers: list[tuple[int, int]],
    providers: list[tuple[int, int]],
) -> tuple[int, int, int, int]:
    """Every write of a claim (see :class:`.claim_writes.ClaimWrites`); the
    counts of created, updated and dropped consumers and of bumped providers."""
    row = (await conn.execute(_PG_WRITES, {
        "now": now,
        "delete_consumers": delete_allocations,
        **{f"a{i}": _column(allocations, i) for i in range(4)},
        **{f"n{i}": _column(new_consumers, i) for i in range(4)},
        **{f"u{i}": _column(consumers, i) for i in range(5)},
        **{f"d{i}": _column(drop_consumers, i) for i in range(2)},
        "p0": _column(providers, 0),
        "p1": _column(providers, 1),
    })).one()
    return row[0], row[1], row[2], row[3]


# -- the fast path ------------------------------------------------------------
#
# The common claim -- new consumers, nothing cleared -- checked and written by
# ONE statement on PostgreSQL, so that the claim's critical section (from the
# provider row locks to COMMIT) waits on one reply instead of two. Every write is
# guarded by ``ok``: the same checks the claims service makes (see
# app.services.claims), minus the error reporting. When ``ok`` is false
# nothing was written, and the caller runs the general path in the same
# transaction, which finds and words the error (or handles what the fast path
# does not: existing consumers). The same checks run first, before the locks
# (:func:`fast_check` takes them only when they pass), so that a refused claim
# does not queue on its providers.

# Where the rows of a claim come from: the request rows r(consumer, rp_uuid,
# rc_name, amount, ord) in body order, the new consumers n(uuid, project, usr,
# ctype) and the new consumers' uuids (for ``= ANY``). As array parameters, one
# statement serves every claim; see _one_shot_listed for the other form.
_REQUESTS_IN_ARRAYS = """unnest(CAST(:r_consumer AS VARCHAR[]), CAST(:r_rp AS VARCHAR[]),
                CAST(:r_rc AS VARCHAR[]), CAST(:r_amount AS INTEGER[]))
         WITH ORDINALITY AS r(consumer, rp_uuid, rc_name, amount, ord)"""
_NEW_CONSUMERS_IN_ARRAYS = """unnest(CAST(:n0 AS VARCHAR[]), CAST(:n1 AS INTEGER[]),
                CAST(:n2 AS INTEGER[]), CAST(:n3 AS INTEGER[])) AS n(uuid, project, usr, ctype)"""
_CONSUMER_UUIDS_IN_ARRAY = "CAST(:consumers AS VARCHAR[])"


def _fast_checks(requests: str = _REQUESTS_IN_ARRAYS,
                 consumer_uuids: str = _CONSUMER_UUIDS_IN_ARRAY) -> str:
    """The checks of the fast path (the CTEs req, inv, wanted, ok), after the
    claim's mark (claims_in_flight): the request rows read it, so it is taken
    before the row locks."""
    return MARK_CLAIM + f""",
  req AS (
    SELECT r.ord, r.consumer, rp.id AS rp_id, rp.generation AS rp_gen, rc.id AS rc_id,
           r.amount
    FROM {requests}
    CROSS JOIN claim_mark
    LEFT JOIN resource_providers rp ON rp.uuid = r.rp_uuid
    LEFT JOIN resource_classes rc ON rc.name = r.rc_name),
  inv AS (
    SELECT i.resource_provider_id AS rp_id, i.resource_class_id AS rc_id, i.total,
           i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio,
           (SELECT COALESCE(SUM(a.used), 0) FROM allocations a
            WHERE a.resource_provider_id = i.resource_provider_id
              AND a.resource_class_id = i.resource_class_id) AS used
    FROM inventories i
    WHERE (i.resource_provider_id, i.resource_class_id) IN (SELECT rp_id, rc_id FROM req)),
  wanted AS (SELECT rp_id, rc_id, SUM(amount) AS amount FROM req GROUP BY rp_id, rc_id),
  ok AS (
    SELECT NOT EXISTS (SELECT 1 FROM req WHERE rp_id IS NULL OR rc_id IS NULL)
       AND NOT EXISTS (SELECT 1 FROM consumers WHERE uuid = ANY({consumer_uuids}))
       AND NOT EXISTS (SELECT 1 FROM allocations WHERE consumer_id = ANY({consumer_uuids}))
       AND NOT EXISTS (SELECT 1 FROM req LEFT JOIN inv USING (rp_id, rc_id)
                       WHERE inv.total IS NULL OR req.amount < inv.min_unit
                          OR req.amount > inv.max_unit OR req.amount % inv.step_size <> 0)
       AND NOT EXISTS (SELECT 1 FROM wanted JOIN inv USING (rp_id, rc_id)
                       WHERE inv.used + wanted.amount
                             > (inv.total - inv.reserved) * inv.allocation_ratio)
       AS ok)"""


def _claim_writes(guard: str, *, providers: str, on_conflict: str = "",
                  new_consumers: str = _NEW_CONSUMERS_IN_ARRAYS) -> str:
    """The write CTEs (ins, new_consumers, providers) of a one-statement claim.

    Each writes only when ``guard`` (a one-row CTE's boolean) holds; ``providers``
    selects the ids whose generation is bumped; ``on_conflict`` is the clause of
    the consumers insert, if any; ``new_consumers`` their rows' source.
    """
    return f"""  ins AS (
    INSERT INTO allocations
      (resource_provider_id, consumer_id, resource_class_id, used, created_at)
    SELECT rp_id, consumer, rc_id, amount, CAST(:now AS TIMESTAMP)
    FROM req WHERE {guard} ORDER BY ord
    RETURNING 1),
  new_consumers AS (
    INSERT INTO consumers
      (uuid, project_id, user_id, consumer_type_id, generation, created_at)
    SELECT uuid, project, usr, ctype, 1, CAST(:now AS TIMESTAMP)
    FROM {new_consumers}
    WHERE {guard}
{on_conflict}    RETURNING 1),
  providers AS (
    UPDATE resource_providers
    SET generation = resource_providers.generation + 1, updated_at = CAST(:now AS TIMESTAMP)
    WHERE resource_providers.id IN ({providers}) AND {guard}
    RETURNING 1)
"""


# The checks, then, only when they pass, the providers' row locks (in id order):
# a claim refused by what is committed takes no lock. The checks read the
# statement's snapshot, from before any wait for a lock: the fast claim, a
# later statement, checks again.
_PG_FAST_CHECK = text("WITH" + _fast_checks() + """
SELECT (SELECT ok FROM ok),
       (SELECT count(*) FROM (SELECT rp.id FROM resource_providers rp
                              WHERE rp.id IN (SELECT rp_id FROM req) AND (SELECT ok FROM ok)
                              ORDER BY rp.id FOR UPDATE OF rp) AS locked)
""")

_PG_FAST_CLAIM = text("WITH" + _fast_checks() + """,
""" + _claim_writes(
    "(SELECT ok FROM ok)", providers="SELECT rp_id FROM req",
    on_conflict="    ON CONFLICT DO NOTHING\n",
) + """SELECT (SELECT ok FROM ok), (SELECT count(*) FROM ins), (SELECT count(*) FROM new_consumers),
       (SELECT count(*) FROM providers)
""")


# The one-shot claim: the checks on the statement's snapshot, then the
# providers' row locks (only when the checks pass), then the writes, but only
# if no provider's generation moved between the snapshot and its lock. Every
# writer that can add usage or change inventory bumps the generation of the
# providers it touches (claims, inventory writes; deleting allocations only
# frees capacity), so an unmoved generation means the snapshot's checks still
# hold under the lock. Run alone (autocommit), the claim's whole critical
# section is this one statement. A consumer created meanwhile is a duplicate
# key (no ON CONFLICT here): the statement fails whole and writes nothing.
def _one_shot(requests: str, new_consumers: str, consumer_uuids: str) -> TextClause:
    return text("WITH" + _fast_checks(requests, consumer_uuids) + """,
  seen AS (SELECT DISTINCT rp_id, rp_gen FROM req),
  locked AS (
    SELECT rp.id, rp.generation FROM resource_providers rp
    WHERE rp.id IN (SELECT rp_id FROM req) AND (SELECT ok FROM ok)
    ORDER BY rp.id FOR UPDATE OF rp),
  go AS (
    SELECT (SELECT ok FROM ok)
       AND (SELECT count(*) FROM locked) = (SELECT count(*) FROM seen)
       AND NOT EXISTS (SELECT 1 FROM locked JOIN seen ON seen.rp_id = locked.id
                       WHERE locked.generation IS DISTINCT FROM seen.rp_gen) AS go),
""" + _claim_writes(
        "(SELECT go FROM go)", providers="SELECT id FROM locked", new_consumers=new_consumers,
    ) + """SELECT (SELECT ok FROM ok), (SELECT go FROM go), (SELECT count(*) FROM ins),
       (SELECT count(*) FROM new_consumers), (SELECT count(*) FROM providers)
""")


_PG_ONE_SHOT = _one_shot(_REQUESTS_IN_ARRAYS, _NEW_CONSUMERS_IN_ARRAYS, _CONSUMER_UUIDS_IN_ARRAY)

# The claims the one-shot statement takes with its rows written out (VALUES):
# up to this many request rows and consumers, that is every scheduler's claim.
_LISTED_REQUESTS, _LISTED_CONSUMERS = 32, 8


@functools.cache
def _one_shot_listed(requests: int, consumers: int) -> TextClause:
    """The one-shot statement for a claim of this shape, its rows as VALUES.

    Given arrays, the planner counts their elements and finds a plan made for
    them cheaper than the prepared statement's generic one every time, so it
    planned the array form on every claim: ~1.7 ms of PostgreSQL's CPU, more
    than running it (~1 ms; pg_stat_statements, the bench's claims). With the
    rows listed, every plan knows their number; from the sixth run on the
    generic plan, made once per connection, is reused. Nova claims a few shapes.
    """
    rows = ", ".join(
        f"(CAST(:c{i} AS VARCHAR), CAST(:p{i} AS VARCHAR), CAST(:r{i} AS VARCHAR), "
        f"CAST(:a{i} AS INTEGER), {i + 1})" for i in range(requests))
    new = ", ".join(
        f"(CAST(:u{i} AS VARCHAR), CAST(:pr{i} AS INTEGER), CAST(:us{i} AS INTEGER), "
        f"CAST(:ct{i} AS INTEGER))" for i in range(consumers))
    uuids = "ARRAY[" + ", ".join(f"CAST(:u{i} AS VARCHAR)" for i in range(consumers)) + "]"
    return _one_shot(f"(VALUES {rows}) AS r(consumer, rp_uuid, rc_name, amount, ord)",
                     f"(VALUES {new}) AS n(uuid, project, usr, ctype)", uuids)


class OneShot(enum.Enum):
    """What :func:`one_shot_claim` did."""

    WROTE = "wrote"
    REFUSED = "refused"  # a check failed on what is committed: nothing written
    MOVED = "moved"  # a provider or consumer changed meanwhile: nothing written


async def one_shot_claim(
    rows: Rows,
    requests: list[tuple[str, str, str, int]],
    new_consumers: list[tuple[str, int, int, int | None]],
    now: datetime,
) -> OneShot:
    """Check and write a claim for new consumers in ONE statement, run
    autocommitted by ``rows`` (``Database.single_rows``); arguments as
    :func:`fast_claim`."""
    statement: TextClause
    params: dict[str, Any] = {"now": now}
    if len(requests) <= _LISTED_REQUESTS and len(new_consumers) <= _LISTED_CONSUMERS:
        statement = _one_shot_listed(len(requests), len(new_consumers))
        for i, (consumer, rp, rc, amount) in enumerate(requests):
            params.update({f"c{i}": consumer, f"p{i}": rp, f"r{i}": rc, f"a{i}": amount})
        for i, (uuid, project, user, consumer_type) in enumerate(new_consumers):
            params.update({f"u{i}": uuid, f"pr{i}": project, f"us{i}": user,
                           f"ct{i}": consumer_type})
    else:
        statement = _PG_ONE_SHOT
        params.update({
            "consumers": _column(new_consumers, 0),
            **{key: _column(requests, i)
               for i, key in enumerate(("r_consumer", "r_rp", "r_rc", "r_amount"))},
            **{f"n{i}": _column(new_consumers, i) for i in range(4)},
        })
    try:
        ((ok, go, inserted, created, bumped),) = await rows(statement, params)
    except Refused as exc:
        # A consumer of the claim created meanwhile (a key), or a lock race or
        # deadlock with another writer: nothing was written.
        if exc.lost_race:
            return OneShot.MOVED
        raise
    if not ok:
        return OneShot.REFUSED
    if not go:
        return OneShot.MOVED
    providers = {rp for _, rp, _, _ in requests}
    if (inserted, created, bumped) != (len(requests), len(new_consumers), len(providers)):
        # Cannot happen: every write is guarded by the same condition.
        LOG.error("one-shot claim wrote %d allocations, %d consumers, %d providers "
                  "for %d, %d, %d", inserted, created, bumped, len(requests),
                  len(new_consumers), len(providers))
    return OneShot.WROTE


async def fast_check(conn: AsyncConnection, requests: list[tuple[str, str, str, int]],
                     consumers: list[str]) -> bool:
    """Whether :func:`fast_claim` would write, by what is committed now; if so,
    the providers are locked (as :func:`.claim_reads.lock_providers` does)."""
    ok, _ = (await conn.execute(_PG_FAST_CHECK, {
        "consumers": consumers,
        **{key: _column(requests, i)
           for i, key in enumerate(("r_consumer", "r_rp", "r_rc", "r_amount"))},
    })).one()
    return bool(ok)


async def fast_claim(
    conn: AsyncConnection,
    requests: list[tuple[str, str, str, int]],
    new_consumers: list[tuple[str, int, int, int | None]],
    now: datetime,
) -> bool:
    """Claim for new consumers in one statement; False: nothing written.

    ``requests``: (consumer uuid, provider uuid, class name, amount) in body
    order; ``new_consumers``: (uuid, project id, user id, consumer type id).
    """
    ok, inserted, created, bumped = (await conn.execute(_PG_FAST_CLAIM, {
        "now": now,
        "consumers": _column(new_consumers, 0),
        **{key: _column(requests, i)
           for i, key in enumerate(("r_consumer", "r_rp", "r_rc", "r_amount"))},
        **{f"n{i}": _column(new_consumers, i) for i in range(4)},
    })).one()
    if not ok:
        return False
    providers = {rp for _, rp, _, _ in requests}
    if (inserted, created, bumped) != (len(requests), len(new_consumers), len(providers)):
        raise ConcurrentUpdate()
    return True
