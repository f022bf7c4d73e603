"""Claims: the unit of work that replaces consumers' allocations, and its rules.

A claim (``PUT /allocations/{c}``, ``POST /allocations``, the allocation
part of ``POST /reshaper``) replaces the whole allocation set of one or more
consumers. The ids of the projects, users and consumer types it names are
resolved first (cached; created on first use, see
:mod:`app.services.consumer_names`). Then, in ONE transaction
(:meth:`Database.claim`: READ COMMITTED on server databases, retried whole on
serialization failures and deadlocks, and from a fresh transaction when a
provider generation moved underneath it):

* :func:`lock_providers` — row locks on the providers the claims name, in one
  order: claims on the same providers queue there, so what they read next
  includes every claim committed before them; disjoint claims never wait;

* :func:`prepare` — one read of consumers, providers, classes, inventories
  and usages; consumer generation checks, provider and class existence;
* :meth:`ClaimPlan.apply` — capacity (``(total - reserved) * ratio``),
  ``min_unit``/``max_unit``/``step_size`` against that usage; then every write
  (allocations, consumers, compare-and-swap of the generation of every
  provider written to and of every consumer touched), on PostgreSQL as one
  statement.

On PostgreSQL a claim of new consumers first tries :func:`fast_claim`: the
same checks and writes as one statement; when any check fails it writes
nothing and the general path above finds and words the error. Its checks run
once before the locks too (:func:`fast_check`, which takes them only when the
checks pass): a claim refused by what is committed is answered without
queueing on its providers. A failed claim
raises, so the transaction rolls back and nothing is left behind.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.database import Database
from app.db.dialect import is_mysql
from app.db.repositories import claim_reads, claim_writes_portable, claim_writes_postgresql
from app.db.repositories.claim_reads import ClaimProvider, ClaimState
from app.db.repositories.claim_writes import ClaimWrites, fast_claim_supported
from app.db.repositories.claim_writes_postgresql import OneShot
from app.exceptions import (
    AllocationExceedsCapacity,
    AllocationInventoryInvalid,
    AllocationProviderNotFound,
    AllocationViolatesConstraints,
    ConsumerGenerationConflict,
    PlacementError,
    UnknownResourceClass,
)
from app.microversion import CONSUMER_GENERATIONS, CONSUMER_TYPES, Version
from app.services.claim_queue import provider_queue
from app.services.consumer_names import Names, resolve_names
from app.settings import Settings


@dataclass
class ConsumerClaim:
    """The new allocation set of one consumer (``allocations == {}`` clears it)."""

    uuid: str
    project_id: str
    user_id: str
    allocations: dict[str, dict[str, int]]
    consumer_type: str | None = None
    generation: int | None = None
    check_generation: bool = False


def claim_from_body(
    consumer_uuid: str, body: Any, version: Version, settings: Settings
) -> ConsumerClaim:
    """A validated consumer body (PUT, one POST entry, reshaper) as a claim.

    ``body`` is any version's consumer model of :mod:`app.schemas.allocations`.
    Bodies before 1.8 name no owner: the configured "incomplete consumer"
    project and user stand in.
    """
    raw = body.allocations
    allocations: dict[str, dict[str, int]] = {}
    if isinstance(raw, list):
        # 1.0-1.11 list form; a provider listed twice: the later entry wins.
        for item in raw:
            allocations[item.resource_provider.uuid] = dict(item.resources)
    else:
        allocations = {rp: dict(entry.resources) for rp, entry in raw.items()}
    project_id = getattr(body, "project_id", None)
    user_id = getattr(body, "user_id", None)
    if project_id is None:
        project_id = settings.incomplete_consumer_project_id
        user_id = settings.incomplete_consumer_user_id
    return ConsumerClaim(
        uuid=consumer_uuid,
        project_id=project_id,
        user_id=user_id or settings.incomplete_consumer_user_id,
        allocations=allocations,
        consumer_type=getattr(body, "consumer_type", None) if version >= CONSUMER_TYPES else None,
        generation=getattr(body, "consumer_generation", None),
        check_generation=version >= CONSUMER_GENERATIONS,
    )


async def write_claims(
    db: Database,
    claims: list[ConsumerClaim],
    now: datetime,
    *,
    exhausted: Callable[[], PlacementError],
) -> None:
    """Replace the allocations of the claims' consumers: all or nothing.

    Raises :class:`UnknownResourceClass` for a class nobody defined (callers
    wrap its text in their own words); ``exhausted`` builds the error answered
    when provider generations kept moving under every attempt.
    """
    names = await names_of(db, claims, now)
    one_shot = one_shot_applies(db, claims)
    refused = False

    async def work(conn: AsyncConnection) -> None:
        locked = False
        if fast_path_applies(conn, claims):
            if not refused and await fast_check(conn, claims):  # and locked the providers
                locked = True
                if await fast_claim(conn, claims, names, now):
                    return
            else:
                # Refused by what is committed now: word the error without
                # queueing on the providers (a refusal writes nothing, so it
                # stands as of that read). Nothing wrong after all: lock below.
                (await prepare(conn, claims, names, now))._check_capacity()
        if not locked and bump_first_applies(conn, claims):
            # Lock the providers by bumping their generations (one statement
            # for two); the plan then writes no generation of its own.
            await claim_writes_portable.lock_by_bumping(
                conn, sorted({rp for c in claims for rp in c.allocations}), now)
            plan = await prepare(conn, claims, names, now)
            await plan.apply(conn, bumped=True)
            return
        if not locked:
            await lock_providers(conn, claims)
        plan = await prepare(conn, claims, names, now)
        await plan.apply(conn)

    async with provider_queue(db).hold(rp for c in claims for rp in c.allocations):
        if one_shot:
            for _ in range(ONE_SHOT_ATTEMPTS):
                outcome = await one_shot_claim(db, claims, names, now)
                if outcome is OneShot.WROTE:
                    return
                if outcome is OneShot.REFUSED:
                    refused = True
                    break
        await db.claim(work, exhausted=exhausted)


async def names_of(db: Database, claims: list[ConsumerClaim], now: datetime) -> Names:
    """Ids of the projects, users and consumer types the claims name."""
    return await resolve_names(
        db,
        (c.project_id for c in claims),
        (c.user_id for c in claims),
        (c.consumer_type for c in claims if c.consumer_type),
        now=now,
    )


async def lock_providers(conn: AsyncConnection, claims: list[ConsumerClaim],
                         also: Iterable[str] = ()) -> None:
    """Lock the providers the claims allocate from (and ``also``), before any read."""
    await claim_reads.lock_providers(
        conn, chain((rp for c in claims for rp in c.allocations), also))


# -- the fast path ------------------------------------------------------------


# One-shot statements tried before the claim transaction: each fails only
# when another claim on the same provider committed in the moment between its
# snapshot and its lock (the transaction then waits on the lock instead).
ONE_SHOT_ATTEMPTS = 3


def one_shot_applies(db: Database, claims: list[ConsumerClaim]) -> bool:
    """The fast path's claims, as one autocommitted statement (PostgreSQL)."""
    return db.dialect == "postgresql" and all(
        claim.allocations and claim.generation is None for claim in claims)


async def one_shot_claim(db: Database, claims: list[ConsumerClaim], names: Names,
                         now: datetime) -> OneShot:
    """Check and write the claims in one statement, their own transaction."""
    return await claim_writes_postgresql.one_shot_claim(
        db.single_rows, _requests(claims), _new_consumers(claims, names), now)


def bump_first_applies(conn: AsyncConnection, claims: list[ConsumerClaim]) -> bool:
    """MySQL/MariaDB, claims of consumers that must be new (1.28+, generation
    null), each with allocations: the providers written to are exactly those
    named, so their generations can be bumped as they are locked."""
    return is_mysql(conn) and all(
        claim.allocations and claim.check_generation and claim.generation is None
        for claim in claims)


def fast_path_applies(conn: AsyncConnection, claims: list[ConsumerClaim]) -> bool:
    """New consumers (as far as the request says), each with allocations."""
    return fast_claim_supported(conn) and all(
        claim.allocations and claim.generation is None for claim in claims
    )


async def fast_check(conn: AsyncConnection, claims: list[ConsumerClaim]) -> bool:
    """Whether the fast path would write, by what is committed now; only then
    are the providers locked (a refusal queues on nothing)."""
    return await claim_writes_postgresql.fast_check(
        conn, _requests(claims), [claim.uuid for claim in claims])


def _requests(claims: list[ConsumerClaim]) -> list[tuple[str, str, str, int]]:
    """(consumer, provider, class, amount) of every allocation, in body order."""
    return [
        (claim.uuid, rp, class_name, amount)
        for claim in claims
        for rp, resources in claim.allocations.items()
        for class_name, amount in resources.items()
    ]


async def fast_claim(conn: AsyncConnection, claims: list[ConsumerClaim], names: Names,
                     now: datetime) -> bool:
    """Try the fast path; False: nothing written, take the general path."""
    return await claim_writes_postgresql.fast_claim(
        conn, _requests(claims), _new_consumers(claims, names), now)


def _new_consumers(claims: list[ConsumerClaim],
                   names: Names) -> list[tuple[str, int, int, int | None]]:
    """(uuid, project id, user id, consumer type id) of every claim's consumer."""
    return [
        (claim.uuid, names.projects[claim.project_id], names.users[claim.user_id],
         names.types.get(claim.consumer_type) if claim.consumer_type else None)
        for claim in claims
    ]


# -- the general path ---------------------------------------------------------


@dataclass
class _Alloc:
    consumer: str
    provider: ClaimProvider
    class_name: str
    amount: int  # 0: an old allocation being cleared


@dataclass
class ClaimPlan:
    """What a claim read, checked and will write (see :func:`prepare`)."""

    claims: list[ConsumerClaim]
    names: Names
    now: datetime
    state: ClaimState
    allocs: list[_Alloc] = field(default_factory=list)

    @property
    def uuids(self) -> list[str]:
        return [claim.uuid for claim in self.claims]

    @property
    def providers(self) -> dict[str, ClaimProvider]:
        """Every provider involved, by uuid, at its current generation."""
        return self.state.providers

    async def _read_usage(self, conn: AsyncConnection) -> None:
        """(Re-)read inventory and usage of every provider and class involved."""
        await claim_reads.read_usage(
            conn,
            self.state,
            sorted({a.provider.id for a in self.allocs}),
            sorted({self.state.class_ids[a.class_name] for a in self.allocs}),
            self.uuids,
        )

    async def refresh(self, conn: AsyncConnection) -> None:
        """Re-read generations, inventory and usage (the reshaper changes
        inventory between :func:`prepare` and :meth:`apply`)."""
        await claim_reads.read_generations(conn, self.state)
        if self.allocs:
            await self._read_usage(conn)

    async def apply(self, conn: AsyncConnection, *, bumped: bool = False) -> None:
        """Check capacity and constraints; write allocations, consumers, generations.

        ``bumped``: the providers' generations were bumped already, when they
        were locked (:func:`bump_first_applies`)."""
        self._check_capacity()
        writes = self._writes()
        if bumped:
            writes.providers = []
        await writes.run(conn)
        for provider in writes.providers:
            provider.generation += 1

    def _writes(self) -> ClaimWrites:
        class_ids = self.state.class_ids
        new_rows = [
            (a.provider.id, a.consumer, class_ids[a.class_name], a.amount)
            for a in self.allocs
            if a.amount
        ]
        # Existing consumers may hold allocations anywhere; new ones only
        # (orphan rows) where the usage read saw them.
        held = bool(self.state.existing) or any(
            i.used_by_claim for i in self.state.inventory.values())
        writes = ClaimWrites(
            delete_allocations=self.uuids if held else [],
            allocations=new_rows,
            providers=sorted({a.provider.id: a.provider for a in self.allocs}.values(),
                             key=lambda p: p.id),
            now=self.now,
        )
        for claim in self.claims:
            row = self.state.existing.get(claim.uuid)
            if not claim.allocations:
                if row is not None:  # left without allocations: the consumer goes away
                    writes.drop_consumers.append((row.id, row.generation))
                continue
            project_id = self.names.projects[claim.project_id]
            user_id = self.names.users[claim.user_id]
            type_id = self.names.types[claim.consumer_type] if claim.consumer_type else None
            if row is None:
                # created at generation 0 and bumped by this write, in one step
                writes.new_consumers.append((claim.uuid, project_id, user_id, type_id))
            else:
                writes.consumers.append((row.id, row.generation, project_id, user_id, type_id))
        return writes

    def _check_capacity(self) -> None:
        """The reference's checks, in its order; 409 on the first failure."""
        if not self.allocs:
            return
        class_ids = self.state.class_ids
        inventory = self.state.inventory
        with_inventory = {provider_id for provider_id, _ in inventory}
        missing = list(dict.fromkeys(
            a.provider.uuid for a in self.allocs if a.provider.id not in with_inventory))
        if missing:
            by_id = {id_: name for name, id_ in class_ids.items()}
            names = [by_id[id_] for id_ in sorted({class_ids[a.class_name]
                                                   for a in self.allocs})]
            raise AllocationInventoryInvalid(classes=", ".join(names), uuids=", ".join(missing))
        requested: dict[tuple[int, int], int] = defaultdict(int)
        for a in self.allocs:
            if not a.amount:
                continue
            key = (a.provider.id, class_ids[a.class_name])
            inv = inventory.get(key)
            if inv is None:
                raise AllocationInventoryInvalid(classes=a.class_name, uuids=a.provider.uuid)
            if a.amount < inv.min_unit or a.amount > inv.max_unit or a.amount % inv.step_size:
                raise AllocationViolatesConstraints(
                    resource_class=a.class_name, uuid=a.provider.uuid)
            requested[key] += a.amount
            wanted = inv.used - inv.used_by_claim + requested[key]
            # Over capacity is refused unless it does not worsen an existing
            # over-commit (the usage before this write).
            if (inv.total - inv.reserved) * inv.allocation_ratio < wanted and wanted > inv.used:
                raise AllocationExceedsCapacity(resource_class=a.class_name, uuid=a.provider.uuid)


async def prepare(conn: AsyncConnection, claims: list[ConsumerClaim], names: Names,
                  now: datetime) -> ClaimPlan:
    """Read everything the claim needs, then check in the reference's order:
    consumer generations (body order), providers exist, classes exist.
    Capacity is checked by :meth:`ClaimPlan.apply`."""
    wanted = list(dict.fromkeys(rp for c in claims for rp in c.allocations))
    classes = list(dict.fromkeys(
        rc for c in claims for resources in c.allocations.values() for rc in resources))
    state = await claim_reads.read_claim(conn, [c.uuid for c in claims], wanted, classes)
    plan = ClaimPlan(claims, names, now, state)

    _check_generations(claims, state)
    for rp_uuid in wanted:
        if rp_uuid not in state.providers:
            raise AllocationProviderNotFound(uuid=rp_uuid)
    for class_name in classes:
        if class_name not in state.class_ids:
            raise UnknownResourceClass(name=class_name)

    clearing = [c.uuid for c in claims if not c.allocations and c.uuid in state.existing]
    old: dict[str, list[_Alloc]] = defaultdict(list)
    if clearing:
        for held in await claim_reads.read_held(conn, state, clearing):
            old[held.consumer].append(_Alloc(held.consumer, held.provider, held.class_name, 0))
    for claim in claims:
        if claim.allocations:
            plan.allocs.extend(
                _Alloc(claim.uuid, state.providers[rp], class_name, amount)
                for rp, resources in claim.allocations.items()
                for class_name, amount in resources.items()
            )
        else:
            plan.allocs.extend(old[claim.uuid])
    if clearing and plan.allocs:
        await plan._read_usage(conn)
    return plan


def _check_generations(claims: list[ConsumerClaim], state: ClaimState) -> None:
    """From 1.28 the client says which generation it saw (null: a new consumer)."""
    for claim in claims:
        if not claim.check_generation:
            continue
        row = state.existing.get(claim.uuid)
        if row is None and claim.generation is not None:
            raise ConsumerGenerationConflict(expected="null", given=claim.generation)
        if row is not None and row.generation != claim.generation:
            raise ConsumerGenerationConflict(expected=row.generation, given=claim.generation)
