"""Several statements in one round trip on MySQL/MariaDB (multi-statements).

MySQL has no data-modifying CTEs, so a write of a few dependent statements
costs a round trip each. With ``CLIENT_MULTI_STATEMENTS`` (set on every MySQL
connection by :func:`install`) one ``COM_QUERY`` may carry several statements
separated by ``;``: the server runs them in order and stops at the first error,
and each returns its own result. :func:`run` sends such a batch through
SQLAlchemy's ordinary execution (parameters bound by the driver, errors
wrapped and classified as for any statement) and answers each statement's
affected rows, insert id and rows.

Multi-statements widen what an injected fragment could do; every statement
here binds its values, none is built from request text.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, bindparam, event, text
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Execution option: (number of statements, list receiving their results).
_BATCH = "placement_batch"
# asyncmy.constants.CLIENT.MULTI_STATEMENTS (protocol constant, no import of the driver).
CLIENT_MULTI_STATEMENTS = 1 << 16


@dataclass(frozen=True)
class Batch:
    """Statements sent together, with their number (to read as many results)."""

    clause: TextClause
    count: int


def compose(*statements: str, expanding: tuple[str, ...] = ()) -> Batch:
    """One batch of ``statements`` (``:name`` parameters; ``expanding`` names
    take a list, as in ``IN :names``)."""
    clause = text(";\n".join(statement.strip().rstrip(";") for statement in statements))
    if expanding:
        clause = clause.bindparams(*(bindparam(name, expanding=True) for name in expanding))
    return Batch(clause, len(statements))


@dataclass(frozen=True)
class Outcome:
    """One statement's result: affected (matched) rows, insert id, rows."""

    rowcount: int
    lastrowid: int
    rows: list[tuple[Any, ...]]


def install(engine: AsyncEngine) -> None:
    """Let ``engine``'s MySQL connections take batches."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _multi_statements(
        dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        cparams["client_flag"] = int(cparams.get("client_flag", 0)) | CLIENT_MULTI_STATEMENTS

    @event.listens_for(engine.sync_engine, "do_execute")
    def _execute_batch(
        cursor: DBAPICursor, statement: str, parameters: Any, context: ExecutionContext
    ) -> bool | None:
        batch = context.execution_options.get(_BATCH)
        if batch is None:
            return None  # an ordinary statement
        count, outcomes = batch
        cursor.execute(statement, parameters)
        for index in range(count):
            if index:
                # An error of this statement is raised here, wrapped as any other.
                cursor.nextset()
            rows = [tuple(row) for row in cursor.fetchall()] if cursor.description else []
            outcomes.append(Outcome(cursor.rowcount, int(cursor.lastrowid or 0), rows))
        return True


async def run(conn: AsyncConnection, batch: Batch, params: Mapping[str, Any]) -> list[Outcome]:
    """The statements of ``batch`` in one round trip: their outcomes, in order.
    A failing statement raises (and the later ones did not run)."""
    outcomes: list[Outcome] = []
    await conn.execute(
        batch.clause, dict(params), execution_options={_BATCH: (batch.count, outcomes)})
    return outcomes
