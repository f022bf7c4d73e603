"""Typed dependencies handlers declare (``db: DatabaseDep``).

``ReadDatabaseDep`` is for the reads that tolerate replication lag (lists,
allocation candidates, usages): the read standby when one is configured
(``app/db/replica.py``), else the primary. Never for a read a claim or a
client's next compare-and-swap depends on.
"""

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from app.db.database import Database
from app.settings import Settings


# async: FastAPI runs plain functions in a thread pool, a hop per request.
async def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def _read_database(request: Request) -> Database:
    database: Database = request.app.state.read_database
    return database


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(_database)]
ReadDatabaseDep = Annotated[Database, Depends(_read_database)]
SettingsDep = Annotated[Settings, Depends(_settings)]
