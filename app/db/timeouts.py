"""Bounds on waiting for the database, per kind of unit of work.

Every wait a request can make on the database is bounded, so that a held lock
or a slow statement costs a 503 (``DatabaseUnavailable``, with Retry-After)
instead of a request that hangs while the pool fills:

* ``pool``: waiting for a pooled connection (SQLAlchemy's ``pool_timeout``);
* ``connect``: opening a connection;
* ``lock``: waiting for one lock (PostgreSQL ``lock_timeout``, InnoDB
  ``innodb_lock_wait_timeout``, SQLite's busy timeout);
* ``read`` / ``write`` / ``candidates``: one statement (PostgreSQL
  ``statement_timeout``, MariaDB ``max_statement_time``, MySQL
  ``max_execution_time``, which only bounds SELECTs).

A connection's session defaults are the read kind's; a unit of work of another
kind whose bound differs sets its own (PostgreSQL: ``set_config(..., true)``,
local to the transaction; MySQL: a session variable, remembered per
connection so it is only sent when it changes).
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings


class Kind(StrEnum):
    """What a unit of work does, which picks its statement time limit."""

    READ = "read"
    WRITE = "write"
    CANDIDATES = "candidates"


@dataclass(frozen=True)
class Timeouts:
    """Seconds (0: no limit on statements of that kind)."""

    read: float = 30.0
    write: float = 30.0
    candidates: float = 60.0
    lock: float = 10.0
    pool: float = 10.0
    connect: float = 5.0

    @classmethod
    def of(cls, settings: "Settings") -> "Timeouts":
        return cls(
            read=settings.db_statement_timeout_read,
            write=settings.db_statement_timeout_write,
            candidates=settings.db_statement_timeout_candidates,
            lock=settings.db_lock_timeout,
            pool=settings.db_pool_timeout,
            connect=settings.db_connect_timeout,
        )

    def statement(self, kind: Kind) -> float:
        return {Kind.READ: self.read, Kind.WRITE: self.write,
                Kind.CANDIDATES: self.candidates}[kind]


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 0)


def postgresql_server_settings(limits: Timeouts) -> dict[str, str]:
    """Session defaults sent with the connection start-up (no round trip)."""
    return {"statement_timeout": str(_ms(limits.read)), "lock_timeout": str(_ms(limits.lock))}


POSTGRESQL_LOCAL_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', '{ms}', true)"


def postgresql_statement_limit(seconds: float) -> str:
    """The statement bounding this transaction's statements to ``seconds``."""
    return POSTGRESQL_LOCAL_STATEMENT_TIMEOUT.format(ms=_ms(seconds))


def mysql_statement_limit(seconds: float, mariadb: bool) -> str:
    if mariadb:
        return f"SET SESSION max_statement_time = {max(seconds, 0):.3f}"
    return f"SET SESSION max_execution_time = {_ms(seconds)}"


def mysql_session_limits(limits: Timeouts, statement: float, mariadb: bool) -> str:
    """One statement setting a new connection's lock and statement bounds."""
    lock = max(round(limits.lock), 1)  # whole seconds, at least 1
    statement_part = mysql_statement_limit(statement, mariadb).removeprefix("SET SESSION ")
    return f"SET SESSION innodb_lock_wait_timeout = {lock}, {statement_part}"
