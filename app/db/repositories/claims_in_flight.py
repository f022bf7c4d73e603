"""PostgreSQL: the claims in flight on the primary, across every worker and replica.

A claim statement of the fast path (new consumers, the scheduler's claims)
marks itself with a shared, transaction-level advisory lock
(:data:`MARK_CLAIM`), taken with a try-lock before its row locks and released
when it commits. A candidates check first waits, bounded, for the exclusive
form of the same lock (:func:`wait_for_claims`) and lets it go at once: the
claims marked when it asked, whichever process runs them, have then committed,
and the check's next statement sees the capacity they took instead of offering
it to schedulers who would claim it in vain (a 409, then their next candidate).

A claim never waits here: while a check waits, the claims that arrive fail
their try-lock and go on unmarked (they started after the check; it need not
see them). So no wait cycle with the claims' row locks can form. This is an
optimisation only: the answer is still the database as read at one moment,
and a claim re-checks capacity under its row locks. (MySQL and MariaDB have
no shared named lock: there a check waits only for its own worker's claims.)

Measured on the bench's scheduler loop (16 schedulers, N=1000, two A/B pairs
run alternately): 409s per placement 2.38 and 2.55 with the wait, 2.77 and
2.83 without, placements/s unchanged within noise.
"""

import functools

from sqlalchemy import TextClause, text

from app.db.driver_statement import Rows

# The advisory lock's key: (class, object) in the database's advisory key
# space, shared with anything else using advisory locks there. "plac", 1.
_KEY = "1886151011, 1"

# A CTE for a claim statement's WITH list: its one row's ``marked`` says
# whether the mark was taken. Referenced by the statement's first read (the
# request rows), so it is taken before any row lock.
MARK_CLAIM = f"""
  claim_mark AS MATERIALIZED (
    SELECT pg_try_advisory_xact_lock_shared({_KEY}) AS marked)"""


@functools.cache
def _wait_statement(bound: float) -> TextClause:
    # A DO block: the bounded wait ends in lock_not_available, which the block
    # swallows, so the caller's connection never sees an error. The exclusive
    # lock is held until the block's transaction (the statement) ends. One
    # statement object per bound: the driver's compiled statements are keyed by it.
    timeout_ms = max(1, round(bound * 1000))
    return text(f"""DO $$ BEGIN
  PERFORM set_config('lock_timeout', '{timeout_ms}ms', true);
  PERFORM pg_advisory_xact_lock({_KEY});
EXCEPTION WHEN lock_not_available THEN NULL;
END $$""")


async def wait_for_claims(rows: Rows, bound: float) -> None:
    """Wait, at most ``bound`` seconds, for the claims marked now to commit.
    ``rows`` runs a statement autocommitted on the primary
    (``Database.single_read_rows``): the wait ends with its statement."""
    await rows(_wait_statement(bound), {})
