"""What an app sends to PostgreSQL, as the tests of one-statement paths count it."""

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


def sent_through_sqlalchemy(app: FastAPI) -> list[str]:
    """Every statement the app's engine sends from now on."""
    sent: list[str] = []
    engine: AsyncEngine = app.state.database.engine

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return sent


def sent_through_asyncpg(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement sent through asyncpg from now on, by SQLAlchemy (prepared
    statements; BEGIN and COMMIT) or on the driver's connection directly."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

    sent: list[str] = []
    for owner, name in ((asyncpg.Connection, "execute"), (asyncpg.Connection, "fetch"),
                        (asyncpg.Connection, "fetchrow"), (asyncpg.Connection, "fetchval"),
                        (PreparedStatement, "fetch"), (PreparedStatement, "fetchrow")):
        original = getattr(owner, name)

        def recorded(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            query = self.get_query() if isinstance(self, PreparedStatement) else args[0]
            sent.append(str(query))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, recorded)
    return sent
