"""Allocations: reads, and the claim unit of work.

A claim (``PUT /allocations/{c}``, ``POST /allocations``, the allocation
part of ``POST /reshaper``) replaces the whole allocation set of one or more
consumers. The ids of the projects, users and consumer types it names are
resolved first (cached; created on first use, see
:func:`consumers.resolve_names`). Then, in ONE transaction:

* :func:`serialize_claims` — on PostgreSQL, wait for the claims before us;
* :func:`prepare` — one read of consumers, providers, classes, inventories
  and usages; consumer generation checks, provider and class existence;
* :meth:`ClaimPlan.apply` — capacity (``(total - reserved) * ratio``),
  ``min_unit``/``max_unit``/``step_size`` against that usage; then every write
  (allocations, consumers, compare-and-swap of the generation of every
  provider written to and of every consumer touched), on PostgreSQL as one
  statement.

:func:`run_claim` runs the unit of work with ``run_write`` (fresh
transaction, SERIALIZABLE on PostgreSQL, retried whole on serialization
failures) and retries it from a fresh transaction when a provider generation
moved underneath it. A failed claim raises, so the transaction rolls back
and nothing is left behind.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import models
from app.db.engine import run_write
from app.db.repositories import consumers as consumer_repo
from app.db.repositories.consumers import ConsumerRow
from app.exceptions import CONCURRENT_UPDATE, Conflict, InvalidInput, NotFound, PlacementError

LOG = logging.getLogger(__name__)

T = TypeVar("T")

_alloc = models.allocations
_inv = models.inventories
_rp = models.resource_providers
_rc = models.resource_classes
_consumers = models.consumers
_projects = models.projects
_users = models.users
_types = models.consumer_types

PROVIDER_RACED = (
    "Another thread concurrently updated the resource provider data. Please retry your update"
)


class UnknownResourceClass(PlacementError):
    """A class named in allocations does not exist (the caller words the 400)."""

    status = 400

    def __init__(self, name: str) -> None:
        super().__init__(f"No such resource class {name}.")
        self.name = name


class ProviderGenerationRace(Exception):
    """A provider generation moved during the claim: retry in a new transaction."""


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


@dataclass
class _Provider:
    id: int
    uuid: str
    generation: int


@dataclass
class _Inventory:
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    used: int  # by everybody, before this claim
    used_by_claim: int  # by the consumers of this claim, before it


@dataclass
class _Alloc:
    consumer: str
    provider: _Provider
    class_name: str
    amount: int  # 0: an old allocation being cleared


# -- the reads, prebuilt ------------------------------------------------------
#
# Everything a claim reads comes back in ONE round trip (inside the claim's
# critical section, round trips are what costs): the consumers, the providers,
# the classes, and per (provider, class) the inventory with the usage by
# everybody and by the claim's own consumers. Rows are
# (kind, n1, s1, n2 .. n7, ratio, used, used_by_claim); see _parse.

_INT = cast(null(), Integer)
_STR = cast(null(), String)
_FLOAT = cast(null(), Float)


def _kind(letter: str) -> Any:
    return literal_column(f"'{letter}'").label("kind")


def _usage_select(provider_filter: Any, class_filter: Any) -> Any:
    mine = func.coalesce(func.sum(case(
        (_alloc.c.consumer_id.in_(bindparam("consumers", expanding=True)), _alloc.c.used),
        else_=0,
    )), 0)
    return (
        select(
            _kind("i"), _inv.c.resource_provider_id, _STR, _inv.c.resource_class_id,
            _inv.c.total, _inv.c.reserved, _inv.c.min_unit, _inv.c.max_unit,
            _inv.c.step_size, _INT, _inv.c.allocation_ratio,
            func.coalesce(func.sum(_alloc.c.used), 0), mine,
        )
        .select_from(
            _inv.join(_rp, _rp.c.id == _inv.c.resource_provider_id)
            .join(_rc, _rc.c.id == _inv.c.resource_class_id)
            .outerjoin(_alloc, and_(
                _alloc.c.resource_provider_id == _inv.c.resource_provider_id,
                _alloc.c.resource_class_id == _inv.c.resource_class_id,
            ))
        )
        .where(provider_filter, class_filter)
        .group_by(
            _inv.c.id, _inv.c.resource_provider_id, _inv.c.resource_class_id, _inv.c.total,
            _inv.c.reserved, _inv.c.min_unit, _inv.c.max_unit, _inv.c.step_size,
            _inv.c.allocation_ratio,
        )
    )


_READ_CLAIM = union_all(
    select(_kind("c"), _consumers.c.id, _consumers.c.uuid, _consumers.c.generation,
           _consumers.c.project_id, _consumers.c.user_id, _consumers.c.consumer_type_id,
           _INT, _INT, _INT, _FLOAT, _INT, _INT)
    .where(_consumers.c.uuid.in_(bindparam("consumers", expanding=True))),
    select(_kind("r"), _rp.c.id, _rp.c.uuid, _rp.c.generation,
           _INT, _INT, _INT, _INT, _INT, _INT, _FLOAT, _INT, _INT)
    .where(_rp.c.uuid.in_(bindparam("providers", expanding=True))),
    select(_kind("k"), _rc.c.id, _rc.c.name, _INT,
           _INT, _INT, _INT, _INT, _INT, _INT, _FLOAT, _INT, _INT)
    .where(_rc.c.name.in_(bindparam("classes", expanding=True))),
    _usage_select(_rp.c.uuid.in_(bindparam("providers", expanding=True)),
                  _rc.c.name.in_(bindparam("classes", expanding=True))),
)

# The same usage, by ids (providers and classes of allocations being cleared).
_READ_USAGE = _usage_select(
    _inv.c.resource_provider_id.in_(bindparam("provider_ids", expanding=True)),
    _inv.c.resource_class_id.in_(bindparam("class_ids", expanding=True)),
)

_READ_OLD = (
    select(_alloc.c.consumer_id, _rp.c.id, _rp.c.uuid, _rp.c.generation, _rc.c.id, _rc.c.name)
    .select_from(
        _alloc.join(_rp, _rp.c.id == _alloc.c.resource_provider_id)
        .join(_rc, _rc.c.id == _alloc.c.resource_class_id)
    )
    .where(_alloc.c.consumer_id.in_(bindparam("consumers", expanding=True)))
    .order_by(_alloc.c.id)
)


@dataclass
class ClaimPlan:
    """What a claim read, checked and will write (see :func:`prepare`)."""

    claims: list[ConsumerClaim]
    names: consumer_repo.Names
    now: datetime
    existing: dict[str, ConsumerRow] = field(default_factory=dict)
    providers: dict[str, _Provider] = field(default_factory=dict)
    class_ids: dict[str, int] = field(default_factory=dict)
    inventory: dict[tuple[int, int], _Inventory] = field(default_factory=dict)
    allocs: list[_Alloc] = field(default_factory=list)

    @property
    def uuids(self) -> list[str]:
        return [claim.uuid for claim in self.claims]

    def _absorb(self, rows: Any) -> None:
        for kind, n1, s1, n2, n3, n4, n5, n6, n7, _, ratio, used, mine in rows:
            if kind == "i":
                self.inventory[(n1, n2)] = _Inventory(
                    n3, n4, n5, n6, n7, float(ratio), int(used), int(mine))
            elif kind == "c":
                self.existing[s1] = ConsumerRow(n1, s1, n2, n3, n4, n5)
            elif kind == "r":
                self.providers[s1] = _Provider(n1, s1, n2 or 0)
            else:
                self.class_ids[s1] = n1

    async def _read_usage(self, conn: AsyncConnection) -> None:
        """(Re-)read inventory and usage of every provider and class involved."""
        self.inventory.clear()
        rows = await conn.execute(_READ_USAGE, {
            "provider_ids": sorted({a.provider.id for a in self.allocs}),
            "class_ids": sorted({self.class_ids[a.class_name] for a in self.allocs}),
            "consumers": self.uuids,
        })
        self._absorb(rows)

    async def refresh(self, conn: AsyncConnection) -> None:
        """Re-read generations, inventory and usage (the reshaper changes
        inventory between :func:`prepare` and :meth:`apply`)."""
        rows = await conn.execute(
            select(_rp.c.uuid, _rp.c.generation).where(_rp.c.uuid.in_(list(self.providers)))
        )
        for uuid, generation in rows:
            self.providers[uuid].generation = generation or 0
        if self.allocs:
            await self._read_usage(conn)

    async def apply(self, conn: AsyncConnection) -> None:
        """Check capacity and constraints; write allocations, consumers, generations."""
        self._check_capacity()
        new_rows = [
            (a.provider.id, a.consumer, self.class_ids[a.class_name], a.amount)
            for a in self.allocs
            if a.amount
        ]
        # Existing consumers may hold allocations anywhere; new ones only
        # (orphan rows) where the usage read saw them.
        held = bool(self.existing) or any(i.used_by_claim for i in self.inventory.values())
        writes = _Writes(
            delete_allocations=self.uuids if held else [],
            allocations=new_rows,
            providers=sorted({a.provider.id: a.provider for a in self.allocs}.values(),
                             key=lambda p: p.id),
            now=self.now,
        )
        for claim in self.claims:
            row = self.existing.get(claim.uuid)
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
        await writes.run(conn)
        for provider in writes.providers:
            provider.generation += 1

    def _check_capacity(self) -> None:
        """The reference's checks, in its order; 409 on the first failure."""
        if not self.allocs:
            return
        with_inventory = {provider_id for provider_id, _ in self.inventory}
        missing = list(dict.fromkeys(
            a.provider.uuid for a in self.allocs if a.provider.id not in with_inventory))
        if missing:
            by_id = {id_: name for name, id_ in self.class_ids.items()}
            names = [by_id[id_] for id_ in sorted({self.class_ids[a.class_name]
                                                   for a in self.allocs})]
            raise _invalid(f"Inventory for '{', '.join(names)}' on resource provider "
                           f"'{', '.join(missing)}' invalid.")
        requested: dict[tuple[int, int], int] = defaultdict(int)
        for a in self.allocs:
            if not a.amount:
                continue
            key = (a.provider.id, self.class_ids[a.class_name])
            inv = self.inventory.get(key)
            where = f"'{a.class_name}' on resource provider '{a.provider.uuid}'"
            if inv is None:
                raise _invalid(f"Inventory for {where} invalid.")
            if a.amount < inv.min_unit or a.amount > inv.max_unit or a.amount % inv.step_size:
                raise _invalid(f"Unable to create allocation for {where}. The requested "
                               "amount would violate inventory constraints.")
            requested[key] += a.amount
            wanted = inv.used - inv.used_by_claim + requested[key]
            # Over capacity is refused unless it does not worsen an existing
            # over-commit (the usage before this write).
            if (inv.total - inv.reserved) * inv.allocation_ratio < wanted and wanted > inv.used:
                raise _invalid(f"Unable to create allocation for {where}. The requested "
                               "amount would exceed the capacity.")


@dataclass
class _Writes:
    """Every write of a claim. On PostgreSQL one fixed statement (data-modifying
    CTEs over arrays, so it is prepared once); on SQLite a few prepared ones."""

    delete_allocations: list[str]
    allocations: list[tuple[int, str, int, int]]  # provider, consumer, class, used
    providers: list[_Provider]
    now: datetime
    new_consumers: list[tuple[str, int, int, int | None]] = field(default_factory=list)
    # id, seen generation, project, user, type (None: keep)
    consumers: list[tuple[int, int, int, int, int | None]] = field(default_factory=list)
    drop_consumers: list[tuple[int, int]] = field(default_factory=list)  # id, generation

    async def run(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            counts = await self._run_postgresql(conn)
        else:
            counts = await self._run_sqlite(conn)
        new, updated, dropped, providers = counts
        if (new, updated, dropped) != (len(self.new_consumers), len(self.consumers),
                                       len(self.drop_consumers)):
            raise Conflict(
                "Another thread concurrently updated the data. Please retry your update",
                code=CONCURRENT_UPDATE,
            )
        if providers != len(self.providers):
            raise ProviderGenerationRace()

    async def _run_postgresql(self, conn: AsyncConnection) -> tuple[int, int, int, int]:
        def column(rows: Sequence[tuple[Any, ...]], index: int) -> list[Any]:
            return [row[index] for row in rows]

        row = (await conn.execute(_PG_WRITES, {
            "now": self.now,
            "delete_consumers": self.delete_allocations,
            **{f"a{i}": column(self.allocations, i) for i in range(4)},
            **{f"n{i}": column(self.new_consumers, i) for i in range(4)},
            **{f"u{i}": column(self.consumers, i) for i in range(5)},
            **{f"d{i}": column(self.drop_consumers, i) for i in range(2)},
            "p0": [p.id for p in self.providers],
            "p1": [p.generation for p in self.providers],
        })).one()
        return row[0], row[1], row[2], row[3]

    async def _run_sqlite(self, conn: AsyncConnection) -> tuple[int, int, int, int]:
        async def many(statement: Any, rows: list[dict[str, Any]]) -> int:
            if not rows:
                return 0
            return int((await conn.execute(statement, rows)).rowcount)  # type: ignore[attr-defined]

        if self.delete_allocations:
            await conn.execute(_DELETE_ALLOCATIONS, {"consumers": self.delete_allocations})
        await many(insert(_alloc), [
            {"resource_provider_id": rp, "consumer_id": consumer, "resource_class_id": rc,
             "used": used, "created_at": self.now}
            for rp, consumer, rc, used in self.allocations
        ])
        # (the write lock is held since BEGIN: nobody else can have created them)
        await many(insert(_consumers), [
            {"uuid": uuid, "project_id": project, "user_id": user, "consumer_type_id": ctype,
             "generation": 1, "created_at": self.now}
            for uuid, project, user, ctype in self.new_consumers
        ])
        new = len(self.new_consumers)
        updated = await many(_UPDATE_CONSUMER, [
            {"b_id": id_, "b_gen": gen, "b_project": project, "b_user": user, "b_type": ctype,
             "b_now": self.now}
            for id_, gen, project, user, ctype in self.consumers
        ])
        dropped = await many(_DROP_CONSUMER, [
            {"b_id": id_, "b_gen": gen} for id_, gen in self.drop_consumers])
        providers = await many(_BUMP_PROVIDER, [
            {"b_id": p.id, "b_gen": p.generation, "b_now": self.now} for p in self.providers])
        return new, updated, dropped, providers


# The PostgreSQL write statement. Every list is an array parameter (possibly
# empty); each part reports how many rows it changed, for the compare-and-swap
# checks. All parts see the same snapshot: the DELETE removes only the old rows.
_PG_WRITES = text("""
WITH
  del AS (
    DELETE FROM allocations
    WHERE consumer_id = ANY(CAST(:delete_consumers AS VARCHAR[]))
    RETURNING 1),
  ins AS (
    INSERT INTO allocations
      (resource_provider_id, consumer_id, resource_class_id, used, created_at)
    SELECT rp, consumer, rc, used, CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:a0 AS INTEGER[]), CAST(:a1 AS VARCHAR[]), CAST(:a2 AS INTEGER[]),
                CAST(:a3 AS INTEGER[])) AS a(rp, consumer, rc, used)
    RETURNING 1),
  new_consumers AS (
    INSERT INTO consumers
      (uuid, project_id, user_id, consumer_type_id, generation, created_at)
    SELECT uuid, project, usr, ctype, 1, CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:n0 AS VARCHAR[]), CAST(:n1 AS INTEGER[]), CAST(:n2 AS INTEGER[]),
                CAST(:n3 AS INTEGER[])) AS n(uuid, project, usr, ctype)
    ON CONFLICT DO NOTHING
    RETURNING 1),
  updated_consumers AS (
    UPDATE consumers
    SET generation = u.gen + 1, project_id = u.project, user_id = u.usr,
        consumer_type_id = COALESCE(u.ctype, consumers.consumer_type_id),
        updated_at = CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:u0 AS INTEGER[]), CAST(:u1 AS INTEGER[]), CAST(:u2 AS INTEGER[]),
                CAST(:u3 AS INTEGER[]), CAST(:u4 AS INTEGER[])) AS u(id, gen, project, usr, ctype)
    WHERE consumers.id = u.id AND consumers.generation = u.gen
    RETURNING 1),
  dropped_consumers AS (
    DELETE FROM consumers
    USING unnest(CAST(:d0 AS INTEGER[]), CAST(:d1 AS INTEGER[])) AS d(id, gen)
    WHERE consumers.id = d.id AND consumers.generation = d.gen
    RETURNING 1),
  providers AS (
    UPDATE resource_providers
    SET generation = p.gen + 1, updated_at = CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:p0 AS INTEGER[]), CAST(:p1 AS INTEGER[])) AS p(id, gen)
    WHERE resource_providers.id = p.id AND resource_providers.generation = p.gen
    RETURNING 1)
SELECT (SELECT count(*) FROM new_consumers), (SELECT count(*) FROM updated_consumers),
       (SELECT count(*) FROM dropped_consumers), (SELECT count(*) FROM providers),
       (SELECT count(*) FROM del), (SELECT count(*) FROM ins)
""")

_DELETE_ALLOCATIONS = delete(_alloc).where(
    _alloc.c.consumer_id.in_(bindparam("consumers", expanding=True)))
_UPDATE_CONSUMER = (
    update(_consumers)
    .where(_consumers.c.id == bindparam("b_id"),
           _consumers.c.generation == bindparam("b_gen"))
    .values(generation=bindparam("b_gen", type_=Integer) + 1,
            project_id=bindparam("b_project"),
            user_id=bindparam("b_user"),
            consumer_type_id=func.coalesce(bindparam("b_type", type_=Integer),
                                           _consumers.c.consumer_type_id),
            updated_at=bindparam("b_now"))
)
_DROP_CONSUMER = delete(_consumers).where(
    _consumers.c.id == bindparam("b_id"), _consumers.c.generation == bindparam("b_gen"))
_BUMP_PROVIDER = (
    update(_rp)
    .where(_rp.c.id == bindparam("b_id"), _rp.c.generation == bindparam("b_gen"))
    .values(generation=bindparam("b_gen", type_=Integer) + 1, updated_at=bindparam("b_now"))
)


# -- the fast path ------------------------------------------------------------
#
# The common claim -- new consumers, nothing cleared -- checked and written by
# ONE statement on PostgreSQL, so that the claim's critical section (from the
# table lock to COMMIT) waits on one reply instead of two. Every write is
# guarded by ``ok``: the same checks :meth:`ClaimPlan.apply` makes, minus the
# error reporting. When ``ok`` is false nothing was written, and the caller
# runs the general path in the same transaction, which finds and words the
# error (or handles what the fast path does not: existing consumers).

_PG_FAST_CLAIM = text("""
WITH
  req AS (
    SELECT r.ord, r.consumer, rp.id AS rp_id, rc.id AS rc_id, r.amount
    FROM unnest(CAST(:r_consumer AS VARCHAR[]), CAST(:r_rp AS VARCHAR[]),
                CAST(:r_rc AS VARCHAR[]), CAST(:r_amount AS INTEGER[]))
         WITH ORDINALITY AS r(consumer, rp_uuid, rc_name, amount, ord)
    LEFT JOIN resource_providers rp ON rp.uuid = r.rp_uuid
    LEFT JOIN resource_classes rc ON rc.name = r.rc_name),
  inv AS (
    SELECT i.resource_provider_id AS rp_id, i.resource_class_id AS rc_id, i.total,
           i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio,
           (SELECT COALESCE(SUM(a.used), 0) FROM allocations a
            WHERE a.resource_provider_id = i.resource_provider_id
              AND a.resource_class_id = i.resource_class_id) AS used
    FROM inventories i
    WHERE (i.resource_provider_id, i.resource_class_id) IN (SELECT rp_id, rc_id FROM req)),
  wanted AS (SELECT rp_id, rc_id, SUM(amount) AS amount FROM req GROUP BY rp_id, rc_id),
  ok AS (
    SELECT NOT EXISTS (SELECT 1 FROM req WHERE rp_id IS NULL OR rc_id IS NULL)
       AND NOT EXISTS (SELECT 1 FROM consumers
                       WHERE uuid = ANY(CAST(:consumers AS VARCHAR[])))
       AND NOT EXISTS (SELECT 1 FROM allocations
                       WHERE consumer_id = ANY(CAST(:consumers AS VARCHAR[])))
       AND NOT EXISTS (SELECT 1 FROM req LEFT JOIN inv USING (rp_id, rc_id)
                       WHERE inv.total IS NULL OR req.amount < inv.min_unit
                          OR req.amount > inv.max_unit OR req.amount % inv.step_size <> 0)
       AND NOT EXISTS (SELECT 1 FROM wanted JOIN inv USING (rp_id, rc_id)
                       WHERE inv.used + wanted.amount
                             > (inv.total - inv.reserved) * inv.allocation_ratio)
       AS ok),
  ins AS (
    INSERT INTO allocations
      (resource_provider_id, consumer_id, resource_class_id, used, created_at)
    SELECT rp_id, consumer, rc_id, amount, CAST(:now AS TIMESTAMP)
    FROM req WHERE (SELECT ok FROM ok) ORDER BY ord
    RETURNING 1),
  new_consumers AS (
    INSERT INTO consumers
      (uuid, project_id, user_id, consumer_type_id, generation, created_at)
    SELECT uuid, project, usr, ctype, 1, CAST(:now AS TIMESTAMP)
    FROM unnest(CAST(:n0 AS VARCHAR[]), CAST(:n1 AS INTEGER[]), CAST(:n2 AS INTEGER[]),
                CAST(:n3 AS INTEGER[])) AS n(uuid, project, usr, ctype)
    WHERE (SELECT ok FROM ok)
    ON CONFLICT DO NOTHING
    RETURNING 1),
  providers AS (
    UPDATE resource_providers
    SET generation = resource_providers.generation + 1, updated_at = CAST(:now AS TIMESTAMP)
    WHERE resource_providers.id IN (SELECT rp_id FROM req) AND (SELECT ok FROM ok)
    RETURNING 1)
SELECT (SELECT ok FROM ok), (SELECT count(*) FROM ins), (SELECT count(*) FROM new_consumers),
       (SELECT count(*) FROM providers)
""")


def fast_path_applies(conn: AsyncConnection, claims: list[ConsumerClaim]) -> bool:
    """New consumers (as far as the request says), each with allocations."""
    return conn.dialect.name == "postgresql" and all(
        claim.allocations and claim.generation is None for claim in claims
    )


async def fast_claim(conn: AsyncConnection, claims: list[ConsumerClaim],
                     names: consumer_repo.Names, now: datetime) -> bool:
    """Try the fast path; False: nothing written, take the general path."""
    requests = [
        (claim.uuid, rp, class_name, amount)
        for claim in claims
        for rp, resources in claim.allocations.items()
        for class_name, amount in resources.items()
    ]
    ok, inserted, created, bumped = (await conn.execute(_PG_FAST_CLAIM, {
        "now": now,
        "consumers": [claim.uuid for claim in claims],
        **{key: [row[i] for row in requests]
           for i, key in enumerate(("r_consumer", "r_rp", "r_rc", "r_amount"))},
        "n0": [claim.uuid for claim in claims],
        "n1": [names.projects[claim.project_id] for claim in claims],
        "n2": [names.users[claim.user_id] for claim in claims],
        "n3": [names.types.get(claim.consumer_type) if claim.consumer_type else None
               for claim in claims],
    })).one()
    if not ok:
        return False
    providers = {rp for claim in claims for rp in claim.allocations}
    if (inserted, created, bumped) != (len(requests), len(claims), len(providers)):
        raise Conflict(
            "Another thread concurrently updated the data. Please retry your update",
            code=CONCURRENT_UPDATE,
        )
    return True


async def prepare(conn: AsyncConnection, claims: list[ConsumerClaim],
                  names: consumer_repo.Names, now: datetime) -> ClaimPlan:
    """Read everything the claim needs, then check in the reference's order:
    consumer generations (body order), providers exist, classes exist.
    Capacity is checked by :meth:`ClaimPlan.apply`."""
    plan = ClaimPlan(claims, names, now)
    wanted = list(dict.fromkeys(rp for c in claims for rp in c.allocations))
    classes = list(dict.fromkeys(
        rc for c in claims for resources in c.allocations.values() for rc in resources))
    plan._absorb(await conn.execute(_READ_CLAIM, {
        "consumers": plan.uuids, "providers": wanted, "classes": classes}))

    for claim in claims:
        if not claim.check_generation:
            continue
        row = plan.existing.get(claim.uuid)
        if row is None and claim.generation is not None:
            raise Conflict("consumer generation conflict - expected null but got "
                           f"{claim.generation}", code=CONCURRENT_UPDATE)
        if row is not None and row.generation != claim.generation:
            raise Conflict(f"consumer generation conflict - expected {row.generation} "
                           f"but got {claim.generation}", code=CONCURRENT_UPDATE)
    for rp_uuid in wanted:
        if rp_uuid not in plan.providers:
            raise InvalidInput(f"Allocation for resource provider '{rp_uuid}' that does not exist.")
    for class_name in classes:
        if class_name not in plan.class_ids:
            raise UnknownResourceClass(class_name)

    clearing = [c.uuid for c in claims if not c.allocations and c.uuid in plan.existing]
    old: dict[str, list[_Alloc]] = defaultdict(list)
    if clearing:
        for consumer, rp_id, rp_uuid, gen, class_id, class_name in await conn.execute(
            _READ_OLD, {"consumers": clearing}
        ):
            provider = plan.providers.setdefault(rp_uuid, _Provider(rp_id, rp_uuid, gen or 0))
            plan.class_ids.setdefault(class_name, class_id)
            old[consumer].append(_Alloc(consumer, provider, class_name, 0))
    for claim in claims:
        if claim.allocations:
            plan.allocs.extend(
                _Alloc(claim.uuid, plan.providers[rp], class_name, amount)
                for rp, resources in claim.allocations.items()
                for class_name, amount in resources.items()
            )
        else:
            plan.allocs.extend(old[claim.uuid])
    if clearing and plan.allocs:
        await plan._read_usage(conn)
    return plan


def _invalid(message: str) -> Conflict:
    return Conflict(f"Unable to allocate inventory: {message}")


async def serialize_claims(conn: AsyncConnection) -> None:
    """On PostgreSQL, queue allocation writers before the snapshot is taken.

    ``LOCK TABLE`` is the one statement that takes its lock *before* a
    SERIALIZABLE transaction's snapshot (which the first query fixes), so each
    claim sees every claim committed before it. Concurrent claims then never
    form the read/write dependency cycles that serializable isolation aborts
    (on small, hot tables nearly every pair does, through shared index and
    heap pages). The mode lets readers through and excludes other writers of
    allocations. :func:`run_claim` makes it the first statement of every claim.
    """
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE allocations IN SHARE ROW EXCLUSIVE MODE")


_sqlite_claim_locks: "WeakKeyDictionary[AsyncEngine, asyncio.Lock]" = WeakKeyDictionary()


def _sqlite_claim_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """Claims of one process queue here on SQLite rather than in its busy handler
    (which sleeps up to 100 ms between tries); the write lock is still taken."""
    if engine.dialect.name != "sqlite":
        return None
    lock = _sqlite_claim_locks.get(engine)
    if lock is None:
        lock = _sqlite_claim_locks[engine] = asyncio.Lock()
    return lock


async def resolve_names(engine: AsyncEngine, claims: list[ConsumerClaim], *, now: datetime,
                        attempts: int) -> consumer_repo.Names:
    return await consumer_repo.resolve_names(
        engine,
        (c.project_id for c in claims),
        (c.user_id for c in claims),
        (c.consumer_type for c in claims if c.consumer_type),
        now=now,
        attempts=attempts,
    )


async def run_claim(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    retries: int,
    attempts: int,
    message: str,
) -> T:
    """Run a claim unit of work; provider races retry it in a fresh transaction."""

    async def claim(conn: AsyncConnection) -> T:
        await serialize_claims(conn)
        return await work(conn)

    lock = _sqlite_claim_lock(engine)
    for attempt in range(max(retries, 1)):
        try:
            if lock is None:
                return await run_write(engine, claim, attempts=attempts)
            async with lock:
                return await run_write(engine, claim, attempts=attempts)
        except ProviderGenerationRace:
            LOG.debug("provider generation moved (attempt %d); retrying claim", attempt + 1)
    LOG.warning("exceeded %d retries of a claim on provider generation conflicts", retries)
    raise Conflict(message, code=CONCURRENT_UPDATE)


# -- reads -------------------------------------------------------------------


@dataclass
class ConsumerAllocations:
    allocations: dict[str, dict[str, object]]
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    consumer_type: str | None = None
    last_modified: datetime | None = None


async def for_consumer(conn: AsyncConnection, consumer_uuid: str) -> ConsumerAllocations:
    rows = await conn.execute(
        select(
            _rp.c.uuid,
            _rp.c.generation,
            _rc.c.name,
            _alloc.c.used,
            _alloc.c.created_at,
            _consumers.c.generation,
            _projects.c.external_id,
            _users.c.external_id,
            _types.c.name,
        )
        .select_from(
            _alloc.join(_rp, _rp.c.id == _alloc.c.resource_provider_id)
            .join(_rc, _rc.c.id == _alloc.c.resource_class_id)
            .join(_consumers, _consumers.c.uuid == _alloc.c.consumer_id)
            .join(_projects, _projects.c.id == _consumers.c.project_id)
            .join(_users, _users.c.id == _consumers.c.user_id)
            .outerjoin(_types, _types.c.id == _consumers.c.consumer_type_id)
        )
        .where(_alloc.c.consumer_id == consumer_uuid)
        .order_by(_alloc.c.id)
    )
    result = ConsumerAllocations({})
    for rp_uuid, rp_gen, class_name, used, created, c_gen, project, user, ctype in rows:
        entry = result.allocations.setdefault(rp_uuid, {"generation": rp_gen or 0,
                                                        "resources": {}})
        entry["resources"][class_name] = used  # type: ignore[index]
        result.project_id, result.user_id, result.generation = project, user, c_gen
        result.consumer_type = ctype or consumer_repo.UNKNOWN_CONSUMER_TYPE
        if created is not None and (result.last_modified is None
                                    or created > result.last_modified):
            result.last_modified = created
    return result


@dataclass
class ProviderAllocations:
    generation: int
    allocations: dict[str, dict[str, object]]
    last_modified: datetime | None


async def for_provider(conn: AsyncConnection, rp_uuid: str) -> ProviderAllocations:
    provider = (
        await conn.execute(select(_rp.c.id, _rp.c.generation).where(_rp.c.uuid == rp_uuid))
    ).first()
    if provider is None:
        raise NotFound(
            f"Resource provider '{rp_uuid}' not found: No resource provider with uuid "
            f"{rp_uuid} found"
        )
    rows = await conn.execute(
        select(_alloc.c.consumer_id, _rc.c.name, _alloc.c.used, _alloc.c.created_at,
               _consumers.c.generation)
        .select_from(
            _alloc.join(_rc, _rc.c.id == _alloc.c.resource_class_id)
            .join(_consumers, _consumers.c.uuid == _alloc.c.consumer_id)
        )
        .where(_alloc.c.resource_provider_id == provider.id)
        .order_by(_alloc.c.id)
    )
    allocations: dict[str, dict[str, object]] = {}
    last: datetime | None = None
    for consumer, class_name, used, created, c_gen in rows:
        entry = allocations.setdefault(consumer, {"resources": {}, "consumer_generation": c_gen})
        entry["resources"][class_name] = used  # type: ignore[index]
        if created is not None and (last is None or created > last):
            last = created
    return ProviderAllocations(provider.generation or 0, allocations, last)


async def delete_for_consumer(conn: AsyncConnection, consumer_uuid: str) -> None:
    """Remove a consumer's allocations and the consumer; no generation changes."""
    result = await conn.execute(delete(_alloc).where(_alloc.c.consumer_id == consumer_uuid))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"No allocations for consumer '{consumer_uuid}'")
    await consumer_repo.delete_consumers_by_uuid(conn, [consumer_uuid])
