"""Allocations: reads, and the claim unit of work.

A claim (``PUT /allocations/{c}``, ``POST /allocations``, the allocation
part of ``POST /reshaper``) replaces the whole allocation set of one or more
consumers. It runs in two phases inside ONE transaction:

* :func:`prepare` — projects/users/consumer types (created on first use),
  consumer lookup and generation check, provider existence;
* :meth:`ClaimPlan.apply` — resource classes, capacity and unit constraints
  against the usage read in this transaction, the writes, and the
  compare-and-swap generation bumps of every provider written to and every
  consumer touched.

The caller runs both through :func:`run_claim`, which executes the unit of
work with ``run_write`` (fresh transaction, SERIALIZABLE on PostgreSQL,
retried whole on serialization failures) and retries it from a fresh
transaction when a provider generation moved underneath it. A failed claim
raises, so the transaction rolls back and nothing is left behind.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import os_resource_classes
from sqlalchemy import (
    Integer,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import models
from app.db.engine import run_write
from app.db.repositories import consumers as consumer_repo
from app.db.repositories.consumers import ConsumerRow
from app.errors import CONCURRENT_UPDATE, BadRequest, Conflict, NotFound, PlacementError

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

# Standard classes have fixed ids (their index in os-resource-classes), in
# every database this service or the reference has synced.
STANDARD_CLASS_IDS = {name: index for index, name in enumerate(os_resource_classes.STANDARDS)}

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
class _OldAllocation:
    consumer: str
    provider: _Provider
    class_id: int
    class_name: str


@dataclass
class _Alloc:
    consumer: str
    provider: _Provider
    class_name: str
    amount: int  # 0: an old allocation being cleared


@dataclass
class ClaimPlan:
    claims: list[ConsumerClaim]
    now: datetime
    existing: dict[str, ConsumerRow]
    project_ids: dict[str, int]
    user_ids: dict[str, int]
    type_ids: dict[str, int]
    providers: dict[str, _Provider]
    old: list[_OldAllocation] = field(default_factory=list)

    async def refresh_generations(self, conn: AsyncConnection) -> None:
        """Re-read provider generations (the reshaper changes some first)."""
        if not self.providers:
            return
        rows = await conn.execute(
            select(_rp.c.uuid, _rp.c.generation).where(
                _rp.c.uuid.in_(list(self.providers))
            )
        )
        for uuid, generation in rows:
            self.providers[uuid].generation = generation or 0

    def _allocations(self) -> list[_Alloc]:
        allocs: list[_Alloc] = []
        for claim in self.claims:
            if claim.allocations:
                for rp_uuid, resources in claim.allocations.items():
                    provider = self.providers[rp_uuid]
                    for class_name, amount in resources.items():
                        allocs.append(_Alloc(claim.uuid, provider, class_name, amount))
            else:
                allocs.extend(
                    _Alloc(claim.uuid, old.provider, old.class_name, 0)
                    for old in self.old
                    if old.consumer == claim.uuid
                )
        return allocs

    async def apply(self, conn: AsyncConnection) -> None:
        allocs = self._allocations()
        class_ids = await _class_ids(conn, [a.class_name for a in allocs if a.amount])
        class_ids.update({old.class_name: old.class_id for old in self.old})
        uuids = [claim.uuid for claim in self.claims]
        holds_something = await _check_capacity(conn, allocs, class_ids, uuids)

        # Existing consumers may hold allocations anywhere; new ones only
        # (orphan rows) where the usage query saw them.
        if self.existing or holds_something:
            await conn.execute(delete(_alloc).where(_alloc.c.consumer_id.in_(uuids)))
        new_rows = [
            {
                "resource_provider_id": a.provider.id,
                "consumer_id": a.consumer,
                "resource_class_id": class_ids[a.class_name],
                "used": a.amount,
                "created_at": self.now,
            }
            for a in allocs
            if a.amount
        ]
        if new_rows:
            await conn.execute(insert(_alloc), new_rows)
        await self._save_consumers(conn)
        await _bump_providers(conn, {a.provider.id: a.provider for a in allocs}, self.now)

    async def _save_consumers(self, conn: AsyncConnection) -> None:
        new_rows: list[dict[str, object]] = []
        for claim in self.claims:
            project_id = self.project_ids[claim.project_id]
            user_id = self.user_ids[claim.user_id]
            type_id = self.type_ids.get(claim.consumer_type) if claim.consumer_type else None
            row = self.existing.get(claim.uuid)
            if not claim.allocations:
                # Left without allocations: the consumer goes away.
                if row is not None:
                    await consumer_repo.delete_consumer(conn, row)
                continue
            if row is None:
                new_rows.append({
                    "uuid": claim.uuid,
                    "project_id": project_id,
                    "user_id": user_id,
                    "consumer_type_id": type_id,
                    # Created at 0 and bumped by this write, in one step.
                    "generation": 1,
                    "created_at": self.now,
                })
            else:
                await consumer_repo.save_consumer(
                    conn, row, project_id=project_id, user_id=user_id,
                    consumer_type_id=type_id, now=self.now,
                )
        await consumer_repo.create_consumers(conn, new_rows)


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


async def _lookup(conn: AsyncConnection, claims: list[ConsumerClaim], providers: list[str]
                  ) -> list[Any]:
    """Projects, users, consumer types, consumers and providers a claim names, in
    one round trip: rows of ``(kind, id, name, generation, project, user, type)``."""
    none = cast(null(), Integer)

    def kind(letter: str) -> Any:
        return literal_column(f"'{letter}'").label("kind")

    parts = [
        select(kind("p"), _projects.c.id, _projects.c.external_id, none, none, none, none)
        .where(_projects.c.external_id.in_(sorted({c.project_id for c in claims}))),
        select(kind("u"), _users.c.id, _users.c.external_id, none, none, none, none)
        .where(_users.c.external_id.in_(sorted({c.user_id for c in claims}))),
        select(kind("c"), _consumers.c.id, _consumers.c.uuid, _consumers.c.generation,
               _consumers.c.project_id, _consumers.c.user_id, _consumers.c.consumer_type_id)
        .where(_consumers.c.uuid.in_([c.uuid for c in claims])),
    ]
    types = sorted({c.consumer_type for c in claims if c.consumer_type})
    if types:
        parts.append(select(kind("t"), _types.c.id, _types.c.name, none, none, none, none)
                     .where(_types.c.name.in_(types)))
    if providers:
        parts.append(select(kind("r"), _rp.c.id, _rp.c.uuid, _rp.c.generation, none, none,
                            none).where(_rp.c.uuid.in_(providers)))
    return list(await conn.execute(union_all(*parts)))


async def prepare(conn: AsyncConnection, claims: list[ConsumerClaim], now: datetime
                  ) -> ClaimPlan:
    """Consumer checks (in body order), then provider existence; then projects,
    users and consumer types are created if they are new."""
    wanted = list(dict.fromkeys(rp for c in claims for rp in c.allocations))
    names: dict[str, dict[str, int]] = {"p": {}, "u": {}, "t": {}}
    existing: dict[str, ConsumerRow] = {}
    providers: dict[str, _Provider] = {}
    for kind, id_, name, gen, project, user, ctype in await _lookup(conn, claims, wanted):
        if kind == "c":
            existing[name] = ConsumerRow(id_, name, gen, project, user, ctype)
        elif kind == "r":
            providers[name] = _Provider(id_, name, gen or 0)
        else:
            names[kind][name] = id_

    for claim in claims:
        if not claim.check_generation:
            continue
        row = existing.get(claim.uuid)
        expected = None if row is None else row.generation
        if expected != claim.generation:
            raise Conflict(
                f"consumer generation conflict - expected {_none(expected)} "
                f"but got {claim.generation}",
                code=CONCURRENT_UPDATE,
            )
    for rp_uuid in wanted:
        if rp_uuid not in providers:
            raise BadRequest(f"Allocation for resource provider '{rp_uuid}' that does not exist.")

    project_ids, user_ids, type_ids = names["p"], names["u"], names["t"]
    new_projects = {c.project_id for c in claims} - project_ids.keys()
    if new_projects:
        project_ids.update(await consumer_repo.project_ids(conn, new_projects, now))
    new_users = {c.user_id for c in claims} - user_ids.keys()
    if new_users:
        user_ids.update(await consumer_repo.user_ids(conn, new_users, now))
    new_types = {c.consumer_type for c in claims if c.consumer_type} - type_ids.keys()
    if new_types:
        type_ids.update(await consumer_repo.consumer_type_ids(conn, new_types, now))

    plan = ClaimPlan(claims, now, existing, project_ids, user_ids, type_ids, providers)
    clearing = [c.uuid for c in claims if not c.allocations and c.uuid in existing]
    if clearing:
        old_rows = await conn.execute(
            select(
                _alloc.c.consumer_id,
                _rp.c.id,
                _rp.c.uuid,
                _rp.c.generation,
                _rc.c.id,
                _rc.c.name,
            )
            .select_from(
                _alloc.join(_rp, _rp.c.id == _alloc.c.resource_provider_id)
                .join(_rc, _rc.c.id == _alloc.c.resource_class_id)
            )
            .where(_alloc.c.consumer_id.in_(clearing))
            .order_by(_alloc.c.id)
        )
        for consumer, rp_id, rp_uuid, gen, class_id, class_name in old_rows:
            provider = providers.setdefault(rp_uuid, _Provider(rp_id, rp_uuid, gen or 0))
            plan.old.append(_OldAllocation(consumer, provider, class_id, class_name))
    return plan


def _none(value: int | None) -> str:
    return "null" if value is None else str(value)


async def _class_ids(conn: AsyncConnection, names: list[str]) -> dict[str, int]:
    """Ids of the named classes; the first unknown one (in order) is an error."""
    ids: dict[str, int] = {}
    lookup: list[str] = []
    for name in dict.fromkeys(names):
        standard = STANDARD_CLASS_IDS.get(name)
        if standard is not None:
            ids[name] = standard
        else:
            lookup.append(name)
    if lookup:
        rows = await conn.execute(select(_rc.c.name, _rc.c.id).where(_rc.c.name.in_(lookup)))
        ids.update({name: id_ for name, id_ in rows})
        for name in lookup:
            if name not in ids:
                raise UnknownResourceClass(name)
    return ids


async def _check_capacity(
    conn: AsyncConnection, allocs: list[_Alloc], class_ids: dict[str, int], uuids: list[str]
) -> bool:
    """Check every new allocation against inventory and usage; 409 on failure.

    Returns whether the claim's consumers hold anything on the checked
    inventories (so their old rows must be deleted).
    """
    if not allocs:
        return False
    provider_ids = sorted({a.provider.id for a in allocs})
    wanted_classes = sorted({class_ids[a.class_name] for a in allocs})
    mine = func.coalesce(
        func.sum(case((_alloc.c.consumer_id.in_(uuids), _alloc.c.used), else_=0)), 0
    )
    rows = await conn.execute(
        select(
            _inv.c.resource_provider_id,
            _inv.c.resource_class_id,
            _inv.c.total,
            _inv.c.reserved,
            _inv.c.min_unit,
            _inv.c.max_unit,
            _inv.c.step_size,
            _inv.c.allocation_ratio,
            func.coalesce(func.sum(_alloc.c.used), 0),
            mine,
        )
        .select_from(
            _inv.outerjoin(
                _alloc,
                and_(
                    _alloc.c.resource_provider_id == _inv.c.resource_provider_id,
                    _alloc.c.resource_class_id == _inv.c.resource_class_id,
                ),
            )
        )
        .where(
            _inv.c.resource_provider_id.in_(provider_ids),
            _inv.c.resource_class_id.in_(wanted_classes),
        )
        .group_by(
            _inv.c.id,
            _inv.c.resource_provider_id,
            _inv.c.resource_class_id,
            _inv.c.total,
            _inv.c.reserved,
            _inv.c.min_unit,
            _inv.c.max_unit,
            _inv.c.step_size,
            _inv.c.allocation_ratio,
        )
    )
    inventory = {(row[0], row[1]): row for row in rows}
    holds_something = any(row[9] for row in inventory.values())

    with_inventory = {key[0] for key in inventory}
    missing = list(dict.fromkeys(
        a.provider.uuid for a in allocs if a.provider.id not in with_inventory
    ))
    if missing:
        by_id = {id_: name for name, id_ in class_ids.items()}
        names = [by_id[id_] for id_ in wanted_classes]
        raise _invalid(
            f"Inventory for '{', '.join(names)}' on resource provider "
            f"'{', '.join(missing)}' invalid."
        )

    requested: dict[tuple[int, int], int] = defaultdict(int)
    for a in allocs:
        if not a.amount:
            continue
        class_id = class_ids[a.class_name]
        key = (a.provider.id, class_id)
        row = inventory.get(key)
        if row is None:
            raise _invalid(
                f"Inventory for '{a.class_name}' on resource provider '{a.provider.uuid}' "
                "invalid."
            )
        _, _, total, reserved, min_unit, max_unit, step_size, ratio, used_all, used_mine = row
        if a.amount < min_unit or a.amount > max_unit or a.amount % step_size:
            raise _invalid(
                f"Unable to create allocation for '{a.class_name}' on resource provider "
                f"'{a.provider.uuid}'. The requested amount would violate inventory "
                "constraints."
            )
        requested[key] += a.amount
        used = used_all - used_mine
        capacity = (total - reserved) * ratio
        wanted = used + requested[key]
        # Over capacity is refused unless it does not worsen an existing
        # over-commit (usage before this write, in this transaction).
        if capacity < wanted and wanted > used_all:
            raise _invalid(
                f"Unable to create allocation for '{a.class_name}' on resource provider "
                f"'{a.provider.uuid}'. The requested amount would exceed the capacity."
            )
    return bool(holds_something)


def _invalid(message: str) -> Conflict:
    return Conflict(f"Unable to allocate inventory: {message}")


async def _bump_providers(conn: AsyncConnection, providers: dict[int, _Provider],
                          now: datetime) -> None:
    """Compare-and-swap every provider's generation, in id order (no deadlocks)."""
    for provider_id in sorted(providers):
        provider = providers[provider_id]
        result = await conn.execute(
            update(_rp)
            .where(_rp.c.id == provider_id, _rp.c.generation == provider.generation)
            .values(generation=provider.generation + 1, updated_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ProviderGenerationRace(provider.uuid)
        provider.generation += 1


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
        except ProviderGenerationRace as exc:
            LOG.debug("provider %s generation moved (attempt %d); retrying claim",
                      exc, attempt + 1)
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
