"""Typed dependencies handlers declare (``db: DatabaseDep``).

``ReadDatabaseDep`` is for the reads that tolerate replication lag (lists,
allocation candidates, usages): the read standby when one is configured
(``app/db/replica.py``), else the primary. Never for a read a claim or a
client's next compare-and-swap depends on.

The hot handlers of a scheduler's claim (candidates, ``PUT /allocations``)
call :func:`database` and :func:`settings` directly instead: each declared
dependency is one more pass of FastAPI's dependency solver per request.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from app.db.database import Database
from app.settings import Settings


def database(request: Request) -> Database:
    found: Database = request.app.state.database
    return found


def read_database(request: Request) -> Database:
    found: Database = request.app.state.read_database
    return found


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


# async: FastAPI runs plain functions in a thread pool, a hop per request.
async def _database(request: Request) -> Database:
    return database(request)


async def _read_database(request: Request) -> Database:
    return read_database(request)


async def _settings(request: Request) -> Settings:
    return settings(request)


DatabaseDep = Annotated[Database, Depends(_database)]
ReadDatabaseDep = Annotated[Database, Depends(_read_database)]
SettingsDep = Annotated[Settings, Depends(_settings)]


# What the route wrapper resolves by itself (app/api/routing.py): the declared
# dependency's function -> the plain function giving the same value.
PLAIN_DEPENDENCIES: dict[object, Callable[[Request], object]] = {
    _database: database,
    _read_database: read_database,
    _settings: settings,
}
