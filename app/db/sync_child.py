"""The start-up schema sync, run where its imports do not outlive it.

A worker keeps every module it imports until it exits, and the sync needs
alembic and mako (about 12 MB once a sync has run). A worker that a supervisor
spawned (``uvicorn --workers N``: it has a parent process in the
multiprocessing sense) therefore syncs through a short-lived child process,
``python -m app.db.sync_child``, and only when :func:`schema_is_current`
found work to do (a new database, an upgrade). A lone process (tests, a single
worker, ``placement-manage``) syncs in process: there is nothing to share.
"""

import asyncio
import fcntl
import hashlib
import multiprocessing
import os
import sys
import tempfile

from sqlalchemy.ext.asyncio import AsyncEngine

URL_VARIABLE = "PLACEMENT_SYNC_DATABASE_URL"
TIMEOUT = 600.0


class SchemaSyncFailed(RuntimeError):
    """The child process could not sync the schema (its last lines of output)."""


async def sync_schema(engine: AsyncEngine, url: str) -> None:
    """Bring the schema to head: in a child process when this is a spawned worker."""
    if multiprocessing.parent_process() is None or ":memory:" in url:
        from app.db.schema import sync_database  # alembic: only when there is work

        await sync_database(engine)
        return
    # The workers of one machine take turns: the first syncs, the others then
    # find the schema current and start no child (each child holds alembic and
    # the app, about 60 MB, while it runs: with every worker's at once a fresh
    # deployment's start-up was its largest footprint). Other machines' workers
    # are ordered by the database's own lock inside the sync.
    from app.db.schema_state import schema_is_current

    try:
        turn = os.open(_turn_file(url), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # another user's file, a read-only /tmp: no turns then
        await sync_in_child(url)
        return
    try:
        await asyncio.to_thread(fcntl.flock, turn, fcntl.LOCK_EX)
        if not await schema_is_current(engine):
            await sync_in_child(url)
    finally:
        os.close(turn)  # releases the lock


def _turn_file(url: str) -> str:
    """The lock file the workers of one machine share for one database."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"placement-schema-sync-{digest}.lock")


async def sync_in_child(url: str) -> None:
    # The URL travels in the environment, not the command line (ps shows that).
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.db.sync_child",
        env={**os.environ, URL_VARIABLE: url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(child.communicate(), TIMEOUT)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise SchemaSyncFailed(f"the schema sync took over {TIMEOUT:.0f} s") from None
    if child.returncode != 0:
        tail = output.decode(errors="replace").strip().splitlines()[-5:]
        raise SchemaSyncFailed("the schema sync failed: " + " / ".join(tail))


async def _main() -> None:
    from app.db.engine import make_engine
    from app.db.schema import sync_database

    engine = make_engine(os.environ[URL_VARIABLE], pool_size=1, max_overflow=0)
    try:
        await sync_database(engine)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(_main())
