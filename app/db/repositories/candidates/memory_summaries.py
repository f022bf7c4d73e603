"""Provider summary rows answered from a worker's :class:`Snapshot` (see :mod:`.memory`).

Rows are handed out again as the same objects while their snapshot entries are
the same objects (per provider), or while the snapshot is the same (per tree),
so the renderer can keep what it built from them.
"""

import weakref
from collections.abc import Callable, Iterable, Sequence

from app.db.repositories.candidates.snapshot import (
    Inventory,
    ProviderInfo,
    Snapshot,
    on_providers_gone,
)
from app.db.repositories.candidates.summaries import SummaryRows, TreeRows
from app.interning import Interned

# provider id -> (info, inventory, usage, classes wanted, summary row, inventory rows):
# the summary rows last built for a provider, with the snapshot objects they came from.
_ROWS: dict[
    int,
    tuple[
        ProviderInfo,
        dict[int, Inventory] | None,
        dict[int, int] | None,
        frozenset[int] | None,
        tuple[str, int | None, int],
        list[tuple[int, int, int]] | None,
    ],
] = {}


def _forget(providers: set[int]) -> None:
    for provider in providers:
        _ROWS.pop(provider, None)


on_providers_gone(_forget)
# The snapshot whose trees' rows are kept (weakly: an old snapshot is not kept
# alive), and (root, with traits, classes wanted) -> that tree's rows. A new
# snapshot starts afresh; unchanged providers still get their rows from _ROWS.
_TREES: tuple[
    Callable[[], Snapshot | None], dict[tuple[int, bool, frozenset[int] | None], TreeRows]
] = (lambda: None, {})


# Equal inventory rows of several providers are one list (read-only once built):
# hosts of one hardware model, idle or equally loaded.
_SHARED: Interned[tuple[tuple[int, int, int], ...], list[tuple[int, int, int]]] = Interned()


def _shared_list(rows: list[tuple[int, int, int]]) -> list[tuple[int, int, int]] | None:
    return _SHARED.get(tuple(rows), lambda: rows) if rows else None


def snapshot_summary_rows(
    snap: Snapshot,
    ids: Iterable[int],
    *,
    whole_trees: bool,
    with_traits: bool = True,
    rc_ids: Sequence[int] | None = None,
) -> SummaryRows:
    """The summary rows of ``ids`` (their whole trees when ``whole_trees``)."""
    wanted = None if rc_ids is None else frozenset(rc_ids)
    if whole_trees:
        return _tree_rows(snap, sorted(set(ids)), with_traits, wanted)
    out = SummaryRows()
    _add_rows(snap, out, [p for p in set(ids) if p in snap.providers], with_traits, wanted)
    return out


def _tree_rows(
    snap: Snapshot, roots: list[int], with_traits: bool, wanted: frozenset[int] | None
) -> SummaryRows:
    """Whole trees, each tree's rows built once per snapshot and shape.

    A tree of one provider keeps no rows of its own (a TreeRows and its three
    maps would cost more than that provider's rows): its rows go straight into
    the answer's maps from ``_ROWS``, and its entry in ``trees`` is ``None``.
    """
    global _TREES
    if _TREES[0]() is not snap:
        _TREES = (weakref.ref(snap), {})
    built = _TREES[1]
    trees = snap.index.trees
    out = SummaryRows()
    parts: list[tuple[int, TreeRows | None]] | None = []
    singles: list[int] = []  # a run of one-provider trees, added at once
    last = 0
    for root in roots:
        members = trees.get(root, ())
        if not members:
            continue
        if len(members) == 1:
            singles.append(root)
            first = final = root
            part = None
        else:
            if singles:
                _add_rows(snap, out, singles, with_traits, wanted)
                singles = []
            key = (root, with_traits, wanted)
            part = built.get(key)
            if part is None:
                rows = SummaryRows()
                _add_rows(snap, rows, members, with_traits, wanted)
                part = built[key] = TreeRows(
                    rows.providers, rows.inventories, rows.traits, members[0], members[-1]
                )
            out.providers.update(part.providers)
            out.inventories.update(part.inventories)
            out.traits.update(part.traits)
            first, final = part.first, part.last
        if parts is not None:
            if first > last:
                parts.append((root, part))
                last = final
            else:
                parts = None  # trees interleave: ids cannot be cut by tree
    if singles:
        _add_rows(snap, out, singles, with_traits, wanted)
    out.trees = parts
    return out


def _add_rows(
    snap: Snapshot,
    out: SummaryRows,
    members: Iterable[int],
    with_traits: bool,
    wanted: frozenset[int] | None,
) -> None:
    names = snap.trait_names
    lists = snap.index.trait_lists
    infos, inventories, usages, traits_of = (
        snap.providers, snap.inventories, snap.usages, snap.traits
    )
    out_providers, out_inventories, out_traits = out.providers, out.inventories, out.traits
    for provider in members:
        info = infos[provider]
        inventory = inventories.get(provider)
        usage = usages.get(provider)
        # The same snapshot objects give the same rows: the same objects are
        # handed out again, so renderers can recognise what they built before.
        cached = _ROWS.get(provider)
        if (
            cached is not None
            and cached[0] is info
            and cached[1] is inventory
            and cached[2] is usage
            and cached[3] == wanted
        ):
            row, listed = cached[4], cached[5]
        else:
            row = info[:3]
            listed = None
            if inventory:
                used = usage or {}
                listed = _shared_list([
                    (rc, int((total - reserved) * ratio), used.get(rc, 0))
                    for rc, (total, reserved, _, _, _, ratio) in inventory.items()
                    if wanted is None or rc in wanted
                ])
            _ROWS[provider] = (info, inventory, usage, wanted, row, listed)
        out_providers[provider] = row
        if listed is not None:
            out_inventories[provider] = listed
        if with_traits:
            traits = traits_of.get(provider)
            if traits:
                listed_names = lists.get(traits)
                if listed_names is None:
                    listed_names = lists[traits] = [names[t] for t in sorted(traits)]
                out_traits[provider] = listed_names
