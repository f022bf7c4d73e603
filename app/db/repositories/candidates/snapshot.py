"""A compact in-memory copy of what allocation candidates read, kept per worker.

Ids only (ints in tuples, dicts and frozensets), no ORM objects. A
:class:`Snapshot` is never changed once published: a refresh builds the next
one from the previous (copying the top-level dicts, replacing the changed
providers' entries), so a search running in a worker thread keeps reading a
consistent version while the event loop refreshes.
"""

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.driver_statement import Rows
from app.db.repositories.candidates import snapshot_load as load
from app.db.repositories.candidates.resolution import SHARING_TRAIT
from app.db.repositories.candidates.snapshot_catch_up import catch_up as catch_up_statement

Inventory = load.Inventory
# (uuid, parent id, root id, generation)
ProviderInfo = tuple[str, int | None, int, int]

EMPTY: frozenset[int] = frozenset()
# A snapshot's per-provider maps, shared with the next version until it changes them.
_MAPS = ("providers", "provider_ids", "inventories", "usages", "allocation_marks", "traits",
         "aggregates")
# Above this share of changed providers a refresh reads every row at once.
FULL_RELOAD_SHARE = 0.25
# What a worker keeps per provider id beside its snapshots (summary rows, rendered
# summaries) registers here, so that deleted providers' entries do not outlive them.
_FORGETTERS: list[Callable[[set[int]], None]] = []


def on_providers_gone(forget: Callable[[set[int]], None]) -> None:
    """Call ``forget`` with the ids of the providers a refresh finds deleted."""
    _FORGETTERS.append(forget)


@dataclass(frozen=True)
class _ClassIndex:
    """The providers with an inventory of one class, ordered by (root, id)."""

    roots: tuple[int, ...]
    providers: tuple[int, ...]

    def in_window(self, window: tuple[int, int] | None) -> Sequence[int]:
        if window is None:
            return self.providers
        after, upto = window
        return self.providers[bisect_right(self.roots, after) : bisect_right(self.roots, upto)]


@dataclass
class Indexes:
    """Reverse maps derived from a snapshot's provider entries (shared until they change)."""

    by_class: dict[int, _ClassIndex] = field(default_factory=dict)
    by_trait: dict[int, frozenset[int]] = field(default_factory=dict)
    by_aggregate: dict[int, frozenset[int]] = field(default_factory=dict)
    trees: dict[int, tuple[int, ...]] = field(default_factory=dict)  # root -> members
    sharing: tuple[int, ...] = ()
    # A trait set's names in trait id order, built once per distinct set (few
    # distinct sets in a cloud); never changed once built.
    trait_lists: dict[frozenset[int], list[str]] = field(default_factory=dict)


@dataclass
class Snapshot:
    fingerprint: load.Fingerprint = ()
    providers: dict[int, ProviderInfo] = field(default_factory=dict)
    provider_ids: dict[str, int] = field(default_factory=dict)  # uuid -> id
    inventories: dict[int, dict[int, Inventory]] = field(default_factory=dict)
    usages: dict[int, dict[int, int]] = field(default_factory=dict)
    # provider -> (count, sum of ids, sum of used) of its allocations
    allocation_marks: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    traits: dict[int, frozenset[int]] = field(default_factory=dict)
    aggregates: dict[int, frozenset[int]] = field(default_factory=dict)
    class_ids: dict[str, int] = field(default_factory=dict)
    class_names: dict[int, str] = field(default_factory=dict)
    trait_ids: dict[str, int] = field(default_factory=dict)
    trait_names: dict[int, str] = field(default_factory=dict)
    aggregate_ids: dict[str, int] = field(default_factory=dict)
    max_provider_id: int = 0
    # The fingerprint's provider part (count, sums of ids, generations, roots,
    # parents) and its allocation and membership marks, as this snapshot's rows
    # give them: kept up to date as entries change, not summed again per check.
    provider_sums: tuple[int, ...] = (0, 0, 0, 0, 0)
    marks: tuple[int, ...] = (0, 0, 0)
    # The database's own mark of the committed state read (load.probe).
    version: str | None = None
    index: Indexes = field(default_factory=Indexes)
    # The maps a version being built still shares with the one before it (each
    # is copied on its first change, see _writable): a check that moves a few
    # providers copies only the maps it changes, not all seven.
    borrowed: set[str] = field(default_factory=set, compare=False, repr=False)

    def root_of(self, provider: int) -> int:
        return self.providers[provider][2]


def _build_indexes(snap: Snapshot) -> Indexes:
    by_class: dict[int, list[tuple[int, int]]] = {}
    by_trait: dict[int, list[int]] = {}
    by_aggregate: dict[int, list[int]] = {}
    trees: dict[int, list[int]] = {}
    for provider, (_, _, root, _) in snap.providers.items():
        trees.setdefault(root, []).append(provider)
        for rc in snap.inventories.get(provider, ()):
            by_class.setdefault(rc, []).append((root, provider))
        for trait in snap.traits.get(provider, EMPTY):
            by_trait.setdefault(trait, []).append(provider)
        for aggregate in snap.aggregates.get(provider, EMPTY):
            by_aggregate.setdefault(aggregate, []).append(provider)
    classes = {}
    for rc, pairs in by_class.items():
        pairs.sort()
        classes[rc] = _ClassIndex(tuple(r for r, _ in pairs), tuple(p for _, p in pairs))
    sharing_trait = snap.trait_ids.get(SHARING_TRAIT)
    return Indexes(
        by_class=classes,
        by_trait={trait: frozenset(ids) for trait, ids in by_trait.items()},
        by_aggregate={aggregate: frozenset(ids) for aggregate, ids in by_aggregate.items()},
        trees={root: tuple(sorted(ids)) for root, ids in trees.items()},
        sharing=tuple(sorted(by_trait.get(sharing_trait, ()))) if sharing_trait else (),
    )


def _apply_names(snap: Snapshot, rows: tuple[Sequence[Any], Sequence[Any], Sequence[Any]]) -> None:
    classes, traits, aggregates = rows
    snap.class_ids = {name: id_ for id_, name in classes}
    snap.class_names = {id_: name for id_, name in classes}
    snap.trait_ids = {name: id_ for id_, name in traits}
    snap.trait_names = {id_: name for id_, name in traits}
    snap.aggregate_ids = {uuid: id_ for id_, uuid in aggregates if uuid is not None}


def _apply_details(snap: Snapshot, ids: Iterable[int], rows: load.Details) -> bool:
    """Replace the entries of ``ids`` with ``rows``; True when an index must be rebuilt."""
    inventories = rows.inventories
    # Equal entries of several providers are one object (hosts of one hardware
    # model, one trait set): entries are never changed in place, only replaced.
    shared: dict[Any, Any] = {}
    for provider, classes in inventories.items():
        ordered = tuple(sorted(classes.items()))  # class id order, however the rows came
        entry = shared.get(ordered)
        if entry is None:
            entry = shared[ordered] = dict(ordered)
        inventories[provider] = entry
    usages, marks, traits, aggregates = rows.usages, rows.marks, rows.traits, rows.aggregates
    reindex = False
    for provider in ids:
        _count_marks(snap, provider, -1)
        inventory = inventories.get(provider)
        if (snap.inventories.get(provider) or {}).keys() != (inventory or {}).keys():
            reindex = True
        _put(snap, "inventories", provider, inventory)
        _put(snap, "usages", provider, usages.get(provider))
        _put(snap, "allocation_marks", provider, marks.get(provider))
        for name, found in (("traits", traits), ("aggregates", aggregates)):
            new = frozenset(found.get(provider, ()))
            new = shared.setdefault(new, new)
            if getattr(snap, name).get(provider, EMPTY) != new:
                reindex = True
            _put(snap, name, provider, new or None)
        _count_marks(snap, provider, 1)
    return reindex


def _writable(snap: Snapshot, name: str) -> dict[Any, Any]:
    """One of ``snap``'s maps, to change: copied first if still the previous version's."""
    entries: dict[Any, Any] = getattr(snap, name)
    if name in snap.borrowed:
        entries = dict(entries)
        setattr(snap, name, entries)
        snap.borrowed.discard(name)
    return entries


def _put(snap: Snapshot, name: str, key: int, value: Any) -> None:
    """Set (or, when empty, remove) one entry of a map. An equal entry is kept as
    it is: the same object (summaries built from it stay valid) and no copy."""
    entries: dict[Any, Any] = getattr(snap, name)
    if not value:
        if key in entries:
            del _writable(snap, name)[key]
    elif entries.get(key) != value:
        _writable(snap, name)[key] = value


def _next_version(old: Snapshot, fingerprint: load.Fingerprint) -> Snapshot:
    """The next version, whose maps can be changed without touching ``old``'s
    (each is copied on its first change: :func:`_writable`)."""
    return replace(old, fingerprint=fingerprint, version=None, borrowed=set(_MAPS))


def _unchanged(
    old: Snapshot, version: str | None, fingerprint: load.Fingerprint
) -> Snapshot | None:
    """``old`` (with the version seen) when the version or the fingerprint says
    nothing it holds changed; None otherwise."""
    if version is not None and version == old.version:
        return old
    if fingerprint == old.fingerprint:
        return old if version == old.version else replace(old, version=version)
    return None


async def still_current(conn: AsyncConnection, old: Snapshot) -> Snapshot | None:
    """``old`` when one statement (it may run autocommitted) shows nothing it
    holds changed; None when :func:`refresh` must read."""
    version, fingerprint = await load.probe(conn, old.version)
    if fingerprint is None:  # the version is old's (the probe skipped the fingerprint)
        return old
    return _unchanged(old, version, fingerprint)


async def refresh(conn: AsyncConnection, old: Snapshot | None) -> Snapshot:
    """The snapshot as of ``conn``'s transaction: ``old`` itself when nothing changed."""
    # One statement for both (the fingerprint skipped when the version is old's).
    version, read = await load.probe(conn, old.version if old is not None else None)
    if read is None and old is not None:
        return old
    fingerprint = read or ()
    same = _unchanged(old, version, fingerprint) if old is not None else None
    if same is not None:
        return same
    snap = _next_version(old or Snapshot(), fingerprint)
    snap.version = version
    reindex = old is None
    if old is None or fingerprint[load.NAMES_PART] != old.fingerprint[load.NAMES_PART]:
        _apply_names(snap, await load.name_rows(conn))
        reindex = True
    provider_rows = await load.provider_rows(conn)
    changed, moved_in_tree = _apply_providers(snap, provider_rows)
    reindex = reindex or moved_in_tree
    gone = snap.providers.keys() - {row[0] for row in provider_rows}
    for forget in _FORGETTERS if gone else ():
        forget(gone)
    for id_ in gone:
        _count_marks(snap, id_, -1)
        info = _writable(snap, "providers").pop(id_)
        _count_provider(snap, id_, info, -1)
        _put(snap, "provider_ids", info[0], None)
        for name in ("inventories", "usages", "allocation_marks", "traits", "aggregates"):
            _put(snap, name, id_, None)
        reindex = True
    providers = snap.providers
    snap.max_provider_id = max(providers, default=0)
    if changed:
        every = old is None or len(changed) > FULL_RELOAD_SHARE * len(providers)
        rows = await load.detail_rows(conn, None if every else changed)
        if _apply_details(snap, providers if every else changed, rows):
            reindex = True
    if snap.marks != fingerprint[load.MARKS_PART]:
        # A write that bumps no generation (allocations deleted, aggregates set
        # below 1.19) moved rows of unchanged providers: the per-provider marks
        # say which, and only theirs are read again.
        moved = _moved(snap, *await load.mark_rows(conn))
        if moved and len(moved) <= FULL_RELOAD_SHARE * len(providers):
            if _apply_details(snap, moved, await load.detail_rows(conn, moved)):
                reindex = True
        if snap.marks != fingerprint[load.MARKS_PART]:
            # Many moved (or what moved escapes the marks): every row.
            if _apply_details(snap, providers, await load.detail_rows(conn, None)):
                reindex = True
    if reindex:
        snap.index = _build_indexes(snap)
    return snap


def _apply_providers(snap: Snapshot, rows: Iterable[Sequence[Any]]) -> tuple[list[int], bool]:
    """Put the (id, uuid, parent, root, generation) rows that differ into
    ``snap``: their ids, and whether one is new or changed its place in a tree
    (the indexes must be rebuilt)."""
    changed: list[int] = []
    reindex = False
    for id_, uuid, parent, root, generation in rows:
        info = (uuid, parent, root, generation or 0)
        before = snap.providers.get(id_)
        if before != info:
            changed.append(id_)
            if before is None or before[1:3] != info[1:3]:
                reindex = True
            if before is not None:
                _count_provider(snap, id_, before, -1)
            _count_provider(snap, id_, info, 1)
            _writable(snap, "providers")[id_] = info
            _put(snap, "provider_ids", uuid, id_)
    return changed, reindex


async def catch_up(rows: Rows, old: Snapshot) -> Snapshot | None:
    """PostgreSQL: ``old`` brought up to date by ONE statement (it may run
    autocommitted), when what changed is providers whose rows moved (claims,
    inventories, traits: the common case); None when :func:`refresh` must read
    (providers gone, names added, a write that bumped no generation)."""
    if old.version is None:
        return None
    read = await catch_up_statement(rows, old.version)
    if read.fingerprint is None:
        return old
    fingerprint = read.fingerprint
    same = _unchanged(old, read.version, fingerprint)
    if same is not None:
        return same
    if fingerprint[load.NAMES_PART] != old.fingerprint[load.NAMES_PART]:
        return None
    snap = _next_version(old, fingerprint)
    snap.version = read.version
    changed, reindex = _apply_providers(snap, read.providers)
    # None gone (the sums below would differ), so the largest id is old's or a new one.
    snap.max_provider_id = max(old.max_provider_id, max(changed, default=0))
    if changed and _apply_details(snap, changed, read.details):
        reindex = True
    if snap.provider_sums != fingerprint[:5] or snap.marks != fingerprint[load.MARKS_PART]:
        return None  # something the changed rows do not account for
    if reindex:
        snap.index = _build_indexes(snap)
    return snap


def _count_provider(snap: Snapshot, id_: int, info: ProviderInfo, sign: int) -> None:
    """Add (1) or take away (-1) one provider's part of the provider sums."""
    _, parent, root, generation = info
    count, ids, generations, roots, parents = snap.provider_sums
    snap.provider_sums = (count + sign, ids + sign * id_, generations + sign * generation,
                          roots + sign * root, parents + sign * (parent or 0))


def _moved(
    snap: Snapshot, allocations: dict[int, int], memberships: dict[int, tuple[int, int]]
) -> list[int]:
    """The providers whose number of allocations or aggregate memberships in
    ``snap`` differ from the database's (:func:`load.mark_rows`)."""
    moved = []
    marks, aggregates = snap.allocation_marks, snap.aggregates
    for provider in snap.providers:
        if marks.get(provider, (0, 0, 0))[0] != allocations.get(provider, 0):
            moved.append(provider)
            continue
        mine = aggregates.get(provider, EMPTY)
        if (len(mine), sum(mine)) != memberships.get(provider, (0, 0)):
            moved.append(provider)
    return moved


def _count_marks(snap: Snapshot, provider: int, sign: int) -> None:
    """Add (1) or take away (-1) one provider's part of the allocation and membership marks."""
    count = snap.allocation_marks.get(provider, (0, 0, 0))[0]
    aggregates = snap.aggregates.get(provider, EMPTY)
    weighted = len(aggregates) * provider * load.MEMBERSHIP_WEIGHT + sum(aggregates)
    mine = (count, len(aggregates), weighted)
    snap.marks = tuple(total + sign * part for total, part in zip(snap.marks, mine, strict=True))


def size_of(snap: Snapshot) -> int:
    """Approximate bytes held by a snapshot (its containers and the objects in them)."""
    import sys

    seen: set[int] = set()

    def walk(value: Any) -> int:
        if id(value) in seen or isinstance(value, (bool, type(None))):
            return 0
        seen.add(id(value))
        size = sys.getsizeof(value)
        if isinstance(value, dict):
            size += sum(walk(k) + walk(v) for k, v in value.items())
        elif isinstance(value, (tuple, list, frozenset, set)):
            size += sum(walk(item) for item in value)
        elif hasattr(value, "__dataclass_fields__"):
            size += sum(walk(getattr(value, name)) for name in value.__dataclass_fields__)
        return size

    return walk(snap)
