"""Every write of a claim, and the compare-and-swap checks on what it changed.

A claim's writes replace allocations, create, update or drop consumers, and
bump the generation of every provider written to, each consumer and provider
update guarded by the generation the claim read. On PostgreSQL they are one
fixed statement (:mod:`.claim_writes_postgresql`), on SQLite and MySQL a few
batched ones (:mod:`.claim_writes_portable`). A count that differs from what was
planned means somebody else changed the row since the claim read it: a moved
consumer is a 409 the client must resolve; a moved provider retries the
claim (:class:`~app.db.database.ProviderGenerationRace`).
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import ProviderGenerationRace
from app.db.dialect import is_postgresql
from app.db.repositories import claim_writes_portable, claim_writes_postgresql
from app.db.repositories.claim_reads import ClaimProvider
from app.exceptions import ConcurrentUpdate


@dataclass
class ClaimWrites:
    """What one claim writes (every list possibly empty)."""

    delete_allocations: list[str]  # consumers whose allocations are replaced
    allocations: list[tuple[int, str, int, int]]  # provider, consumer, class, used
    providers: list[ClaimProvider]  # written to: generation compare-and-swap
    now: datetime
    new_consumers: list[tuple[str, int, int, int | None]] = field(default_factory=list)
    # id, seen generation, project, user, type (None: keep)
    consumers: list[tuple[int, int, int, int, int | None]] = field(default_factory=list)
    drop_consumers: list[tuple[int, int]] = field(default_factory=list)  # id, generation

    async def run(self, conn: AsyncConnection) -> None:
        """Write everything; raise if a consumer or provider moved meanwhile."""
        write = (claim_writes_postgresql.write_claim if is_postgresql(conn)
                 else claim_writes_portable.write_claim)
        new, updated, dropped, providers = await write(
            conn,
            now=self.now,
            delete_allocations=self.delete_allocations,
            allocations=self.allocations,
            new_consumers=self.new_consumers,
            consumers=self.consumers,
            drop_consumers=self.drop_consumers,
            providers=[(p.id, p.generation) for p in self.providers],
        )
        if (new, updated, dropped) != (len(self.new_consumers), len(self.consumers),
                                       len(self.drop_consumers)):
            raise ConcurrentUpdate()
        if providers != len(self.providers):
            raise ProviderGenerationRace()


def fast_claim_supported(conn: AsyncConnection) -> bool:
    """Whether the dialect has the one-statement claim of new consumers."""
    return is_postgresql(conn)
