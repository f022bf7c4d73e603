"""Two apps on one database, standing for two workers (or replicas) of a deployment."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, asgi_client, running_app

Pair = tuple[FastAPI, httpx.AsyncClient]


@asynccontextmanager
async def two_workers(database_url: str) -> AsyncIterator[tuple[Pair, Pair]]:
    """Each app with an admin client; the candidates snapshot checked on every request."""
    settings = Settings(database_url=database_url, auth_strategy="noauth2",
                        candidates_snapshot_max_age=0.0)
    async with running_app(settings) as one, asgi_client(one, ADMIN_LATEST) as first, \
            running_app(settings) as two, asgi_client(two, ADMIN_LATEST) as second:
        yield (one, first), (two, second)


def engine_of(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.database.engine
    return engine
