"""What a claim reads: consumers, providers, classes, inventory and usage.

Everything a claim reads comes back in ONE round trip (inside the claim's
critical section, round trips are what costs): the consumers, the providers,
the classes, and per (provider, class) the inventory with the usage by
everybody and by the claim's own consumers. The statements are built once, at
import. Rows are (kind, n1, s1, n2 .. n7, ratio, used, used_by_claim); see
:meth:`ClaimState.absorb`.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import is_mysql, is_postgresql
from app.db.repositories.consumers import ConsumerRow

_alloc = models.allocations
_inv = models.inventories
_rp = models.resource_providers
_rc = models.resource_classes
_consumers = models.consumers


@dataclass
class ClaimProvider:
    id: int
    uuid: str
    generation: int


@dataclass
class ClaimInventory:
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    used: int  # by everybody, before this claim
    used_by_claim: int  # by the consumers of this claim, before it


@dataclass
class ClaimState:
    """What a claim read: consumers by uuid, providers by uuid, class ids by
    name, inventory and usage by (provider id, class id)."""

    existing: dict[str, ConsumerRow] = field(default_factory=dict)
    providers: dict[str, ClaimProvider] = field(default_factory=dict)
    class_ids: dict[str, int] = field(default_factory=dict)
    inventory: dict[tuple[int, int], ClaimInventory] = field(default_factory=dict)

    def absorb(self, rows: Iterable[Any]) -> None:
        for kind, n1, s1, n2, n3, n4, n5, n6, n7, _, ratio, used, mine in rows:
            if kind == "i":
                self.inventory[(n1, n2)] = ClaimInventory(
                    n3, n4, n5, n6, n7, float(ratio), int(used), int(mine))
            elif kind == "c":
                self.existing[s1] = ConsumerRow(n1, s1, n2, n3, n4, n5)
            elif kind == "r":
                self.providers[s1] = ClaimProvider(n1, s1, n2 or 0)
            else:
                self.class_ids[s1] = n1


@dataclass(frozen=True)
class HeldAllocation:
    """An allocation a consumer holds now (one being cleared)."""

    consumer: str
    provider: ClaimProvider
    class_name: str


# -- the statements, prebuilt -------------------------------------------------

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

_READ_HELD = (
    select(_alloc.c.consumer_id, _rp.c.id, _rp.c.uuid, _rp.c.generation, _rc.c.id, _rc.c.name)
    .select_from(
        _alloc.join(_rp, _rp.c.id == _alloc.c.resource_provider_id)
        .join(_rc, _rc.c.id == _alloc.c.resource_class_id)
    )
    .where(_alloc.c.consumer_id.in_(bindparam("consumers", expanding=True)))
    .order_by(_alloc.c.id)
)


# Row locks on the providers a claim names, taken in one order (PostgreSQL
# locks the sorted rows; InnoDB locks as it walks the uuid index, in uuid order).
_LOCK_PROVIDERS = (
    select(_rp.c.id)
    .where(_rp.c.uuid.in_(bindparam("providers", expanding=True)))
    .order_by(_rp.c.id)
    .with_for_update()
)


# -- the reads ----------------------------------------------------------------


async def lock_providers(conn: AsyncConnection, providers: Iterable[str]) -> None:
    """Lock the rows of these providers (by uuid) until the transaction ends.

    A claim takes them before it reads anything: at READ COMMITTED every later
    statement then sees what the claims before it committed, and claims on the
    same providers queue here instead of failing their compare-and-swap.
    SQLite needs nothing (its write lock is held since ``BEGIN IMMEDIATE``).
    """
    uuids = sorted(set(providers))
    if uuids and (is_postgresql(conn) or is_mysql(conn)):
        await conn.execute(_LOCK_PROVIDERS, {"providers": uuids})


async def read_claim(
    conn: AsyncConnection, consumers: list[str], providers: list[str], classes: list[str]
) -> ClaimState:
    """The named consumers, providers and classes, and the inventory and usage
    of every (provider, class) pair among them, in one round trip."""
    state = ClaimState()
    state.absorb(await conn.execute(_READ_CLAIM, {
        "consumers": consumers, "providers": providers, "classes": classes}))
    return state


async def read_usage(
    conn: AsyncConnection,
    state: ClaimState,
    provider_ids: list[int],
    class_ids: list[int],
    consumers: list[str],
) -> None:
    """(Re-)read the inventory and usage of these providers and classes."""
    state.inventory.clear()
    state.absorb(await conn.execute(_READ_USAGE, {
        "provider_ids": provider_ids, "class_ids": class_ids, "consumers": consumers}))


async def read_held(
    conn: AsyncConnection, state: ClaimState, consumers: list[str]
) -> list[HeldAllocation]:
    """The allocations the consumers hold, oldest first; their providers and
    classes join those the state knows."""
    held = []
    for consumer, rp_id, rp_uuid, generation, class_id, class_name in await conn.execute(
        _READ_HELD, {"consumers": consumers}
    ):
        provider = state.providers.setdefault(
            rp_uuid, ClaimProvider(rp_id, rp_uuid, generation or 0))
        state.class_ids.setdefault(class_name, class_id)
        held.append(HeldAllocation(consumer, provider, class_name))
    return held


async def read_generations(conn: AsyncConnection, state: ClaimState) -> None:
    """Re-read the generations of the providers the state knows."""
    rows = await conn.execute(
        select(_rp.c.uuid, _rp.c.generation).where(_rp.c.uuid.in_(list(state.providers)))
    )
    for uuid, generation in rows:
        state.providers[uuid].generation = generation or 0
