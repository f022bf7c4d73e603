"""SQL that fills and refreshes the per-worker candidates snapshot.

Most writes that change what candidates read (inventories, traits, claims,
reshapes, aggregates from 1.19) bump the generation of the providers they
touch. Some do not, here as in the reference: deleting a consumer's
allocations (``DELETE /allocations/{c}``, or a claim moving a consumer off a
provider) and setting aggregates below 1.19. So a one-row *fingerprint* holds
the provider table's count and sums (ids, generations, parents, roots), the
sizes of the name tables, the number of allocations and marks of the
aggregate memberships (count, a weighted sum). When it moves, the
(id, generation, parent, root) list says which providers to reload; if the
allocation count or membership marks still differ from what the snapshot then
holds, every provider's usages or aggregates are read again.

The allocation count alone suffices: every write that inserts or changes an
allocation bumps the generation of its provider in the same transaction (here
and in the reference, so also when both serve one database), and such
providers are read again. What is left stale can only be allocations deleted
from providers whose generation did not move, so the snapshot then holds more
allocations than the table. A count is one scan of the smallest index
(PostgreSQL: an index-only scan), where sums of ids and amounts read the table.

On PostgreSQL, :func:`probe` reads the fingerprint with the database version:
the statement's snapshot (``pg_current_snapshot()``: xmin, xmax and the
transactions in progress). Two equal snapshots see the same committed
transactions, hence the same rows, so a check whose snapshot equals the last
one's reads no table (the statement skips its fingerprint part). Any
transaction that wrote, on any table of the cluster, makes them differ. Run
first in a REPEATABLE READ transaction, its snapshot is the transaction's.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import models
from app.db.dialect import in_list_parameter, list_parameter
from app.db.repositories.candidates.statements import cached, fetch_all

_rp = models.resource_providers
_inv = models.inventories
_alloc = models.allocations
_rpt = models.resource_provider_traits
_rpa = models.resource_provider_aggregates
_traits = models.traits
_rc = models.resource_classes
_agg = models.placement_aggregates

Fingerprint = tuple[int, ...]
# A membership's weight in the memberships mark: provider id * this + aggregate id.
MEMBERSHIP_WEIGHT = 1 << 20


def fingerprint_statement() -> Any:
    def sized(table: Any) -> list[Any]:
        return [
            select(func.count()).select_from(table).scalar_subquery(),
            select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery(),
        ]

    def total(column: Any) -> Any:
        return func.coalesce(func.sum(column), 0)

    def marks(table: Any, *columns: Any) -> list[Any]:
        return [select(column).select_from(table).scalar_subquery() for column in columns]

    membership = cast(_rpa.c.resource_provider_id, BigInteger) * MEMBERSHIP_WEIGHT
    # aggregate memberships: count and weighted sum from ONE scan, the one row
    # joined to every provider's (no providers, no memberships: both NULL, 0)
    memberships = select(
        func.count().label("count"),
        total(membership + _rpa.c.aggregate_id).label("weighted"),
    ).subquery("memberships")
    return select(
        func.count(),
        total(_rp.c.id),
        total(_rp.c.generation),
        total(_rp.c.root_provider_id),
        total(func.coalesce(_rp.c.parent_provider_id, 0)),
        *sized(_rc),
        *sized(_traits),
        *sized(_agg),
        # allocations: their number (see the module's docstring)
        *marks(_alloc, func.count()),
        func.max(memberships.c.count),
        func.max(memberships.c.weighted),
    ).select_from(_rp.join(memberships, true()))


async def fingerprint(conn: AsyncConnection) -> Fingerprint:
    """One row that changes whenever a provider, class, trait or aggregate does."""
    statement = cached(("snapshot-fingerprint",), fingerprint_statement)
    row = (await conn.execute(statement)).one()
    return tuple(int(value or 0) for value in row)


NAMES_PART = slice(5, 11)  # the name tables' part of a fingerprint
# the number of allocations, then memberships (count, weighted sum)
MARKS_PART = slice(11, 14)


async def probe(
    conn: AsyncConnection, last_version: str | None
) -> tuple[str | None, Fingerprint | None]:
    """The database version (PostgreSQL) and the fingerprint in ONE statement, so
    that it can run autocommitted: one round trip, no BEGIN, COMMIT or statement
    limit. Its two parts come from the statement's one snapshot. The
    fingerprint is None when the version is ``last_version``: the statement
    then skips it (its count of allocations is most of its cost)."""
    if conn.dialect.name != "postgresql":
        return None, await fingerprint(conn)
    statement = cached(("snapshot-probe",), _probe_statement)
    version, *row = (await conn.execute(statement, {"last": last_version or ""})).one()
    if row[0] is None:  # the version is the last one: no fingerprint row
        return str(version), None
    return str(version), tuple(int(value or 0) for value in row)


def _probe_statement() -> Any:
    # The fingerprint joined laterally under a condition on the version alone:
    # PostgreSQL makes it a one-time filter, so an unchanged version scans no
    # table, and the HAVING drops the aggregate's row before its scalar
    # subqueries (the allocation count) are evaluated.
    version = cast(literal_column("pg_current_snapshot()"), Text)
    moved = version != bindparam("last", type_=Text)
    fingerprint_only = fingerprint_statement().where(moved).having(moved).lateral("fp")
    return select(version.label("version"), *fingerprint_only.c).select_from(
        select(literal_column("1")).subquery("one").outerjoin(fingerprint_only, true())
    )


async def provider_rows(conn: AsyncConnection) -> Sequence[Any]:
    """(id, uuid, parent id, root id, generation) of every provider."""
    statement = cached(
        ("snapshot-providers",),
        lambda: select(
            _rp.c.id, _rp.c.uuid, _rp.c.parent_provider_id, _rp.c.root_provider_id,
            _rp.c.generation,
        ),
    )
    return await fetch_all(conn, statement)


def _marks_statement() -> Any:
    allocations = select(
        literal(0, Integer), _alloc.c.resource_provider_id, func.count(),
        cast(literal(0), BigInteger),
    ).group_by(_alloc.c.resource_provider_id)
    memberships = select(
        literal(1, Integer), _rpa.c.resource_provider_id, func.count(),
        cast(func.sum(_rpa.c.aggregate_id), BigInteger),
    ).group_by(_rpa.c.resource_provider_id)
    return union_all(allocations, memberships)


async def mark_rows(
    conn: AsyncConnection,
) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    """Per provider: its number of allocations, and its number of aggregates with
    the sum of their ids (providers with none left out). What a write that bumps
    no generation (deleting allocations, aggregates set below 1.19) changes,
    per provider, so that only those providers' rows need reading again."""
    statement = cached(("snapshot-marks",), _marks_statement)
    allocations: dict[int, int] = {}
    memberships: dict[int, tuple[int, int]] = {}
    for kind, provider, count, id_sum in await fetch_all(conn, statement):
        if kind == 0:
            allocations[provider] = int(count)
        else:
            memberships[provider] = (int(count), int(id_sum or 0))
    return allocations, memberships


async def name_rows(
    conn: AsyncConnection,
) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
    """(id, name) of every class and trait, (id, uuid) of every aggregate."""
    classes = cached(("snapshot-classes",), lambda: select(_rc.c.id, _rc.c.name))
    traits = cached(("snapshot-traits",), lambda: select(_traits.c.id, _traits.c.name))
    aggregates = cached(("snapshot-aggregates",), lambda: select(_agg.c.id, _agg.c.uuid))
    return (
        await fetch_all(conn, classes),
        await fetch_all(conn, traits),
        await fetch_all(conn, aggregates),
    )


# The kinds of row of the details statement (its first column).
INVENTORY, USAGE, TRAIT, AGGREGATE = range(4)
_WIDTH = 6  # the integer columns of a details row, after its kind and provider


def _details_statement(dialect: str, some: bool) -> Any:
    """Inventories, usages, traits and aggregates as ONE statement (one round
    trip instead of four): rows of (kind, provider, six integers, a ratio),
    padded with NULLs."""

    def only(column: Any) -> list[Any]:
        return [in_list_parameter(dialect, column, "ids")] if some else []

    return details_union(only)


def details_union(only: Callable[[Any], list[Any]]) -> Any:
    """The details rows of the providers ``only(provider column)`` keeps (its
    conditions; none: every provider)."""

    def row(kind: int, provider: Any, *values: Any, ratio: Any = None) -> Any:
        nulls = [null()] * (_WIDTH - len(values))
        last = null() if ratio is None else ratio
        return select(literal(kind, Integer), provider, *values, *nulls, last).where(
            *only(provider))

    inventories = row(
        INVENTORY, _inv.c.resource_provider_id, _inv.c.resource_class_id, _inv.c.total,
        _inv.c.reserved, _inv.c.min_unit, _inv.c.max_unit, _inv.c.step_size,
        ratio=_inv.c.allocation_ratio,
    )
    usages = row(
        USAGE, _alloc.c.resource_provider_id, _alloc.c.resource_class_id,
        cast(func.sum(_alloc.c.used), BigInteger), func.count(_alloc.c.id),
        cast(func.sum(_alloc.c.id), BigInteger),
    ).group_by(_alloc.c.resource_provider_id, _alloc.c.resource_class_id)
    traits = row(TRAIT, _rpt.c.resource_provider_id, _rpt.c.trait_id)
    aggregates = row(AGGREGATE, _rpa.c.resource_provider_id, _rpa.c.aggregate_id)
    return union_all(inventories, usages, traits, aggregates)


# (total, reserved, min_unit, max_unit, step_size, allocation_ratio)
Inventory = tuple[int, int, int, int, int, float]
# Rows of a full load come in batches of this many, each folded before the
# next is read: the rows of every provider never all exist at once (they took
# 3-4 MB at 1,800 providers, which the worker's allocator then kept).
STREAM_ROWS = 1000


@dataclass
class Details:
    """Detail rows folded per provider: what a snapshot keeps of each."""

    inventories: dict[int, dict[int, Inventory]] = field(default_factory=dict)
    usages: dict[int, dict[int, int]] = field(default_factory=dict)
    # (count, sum of ids, sum of used) of a provider's allocations
    marks: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    traits: dict[int, set[int]] = field(default_factory=dict)
    aggregates: dict[int, set[int]] = field(default_factory=dict)

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        """Fold rows of :func:`details_union` in."""
        for kind, provider, first, second, third, fourth, fifth, sixth, ratio in rows:
            if kind == INVENTORY:
                self.inventories.setdefault(provider, {})[first] = (
                    second, third, fourth, fifth, sixth, float(ratio))
            elif kind == USAGE:  # class, used, count, sum of ids
                used = int(second)
                self.usages.setdefault(provider, {})[first] = used
                count, ids, total = self.marks.get(provider, (0, 0, 0))
                self.marks[provider] = (count + third, ids + int(fourth), total + used)
            elif kind == TRAIT:
                self.traits.setdefault(provider, set()).add(first)
            else:
                self.aggregates.setdefault(provider, set()).add(first)


async def detail_rows(conn: AsyncConnection, ids: Iterable[int] | None) -> Details:
    """Inventories, usages, traits and aggregates of the providers ``ids`` (None: all)."""
    dialect = conn.dialect.name
    some = ids is not None
    statement = cached(
        ("snapshot-details", dialect, some), lambda: _details_statement(dialect, some)
    )
    details = Details()
    if ids is None:
        result = await conn.stream(statement)
        async for rows in result.partitions(STREAM_ROWS):
            details.add(rows)
    else:
        details.add(await fetch_all(conn, statement, {"ids": list_parameter(dialect, ids)}))
    return details
