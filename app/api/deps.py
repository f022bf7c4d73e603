"""Typed dependencies handlers declare (``db: DatabaseDep``)."""

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from app.db.database import Database
from app.settings import Settings


# async: FastAPI runs plain functions in a thread pool, a hop per request.
async def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(_database)]
SettingsDep = Annotated[Settings, Depends(_settings)]
