"""The candidate lookups answered from a worker's :class:`Snapshot`, row for row.

Each method answers what its SQL twin (:class:`.source.SqlSource`) answers
on the same data: the same filters (see :func:`.pairs.group_rows` for their
meaning), the same rows (as a set where the SQL is a ``UNION``). Work follows
the providers that can match (per class, trait or aggregate indexes), and a
window of anchors is a range of the per-class index ordered by root.
"""

from collections.abc import Collection, Iterable, Sequence

from app.db.repositories.candidates.memory_summaries import snapshot_summary_rows
from app.db.repositories.candidates.resolution import Resolved
from app.db.repositories.candidates.shapes import AnchorFilter, GroupQuery, Sharing, Window
from app.db.repositories.candidates.snapshot import EMPTY, Snapshot
from app.db.repositories.candidates.source import GroupRow
from app.db.repositories.candidates.summaries import SummaryRows


class SnapshotSource:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snap = snapshot

    # -- names ------------------------------------------------------------------------

    async def resolve(
        self, *, traits: Iterable[str], aggregates: Iterable[str], providers: Iterable[str]
    ) -> Resolved:
        snap = self.snap
        out = Resolved(
            class_ids=snap.class_ids,
            class_names=snap.class_names,
            trait_ids={name: snap.trait_ids[name] for name in traits if name in snap.trait_ids},
            aggregate_ids={
                uuid: snap.aggregate_ids[uuid] for uuid in aggregates if uuid in snap.aggregate_ids
            },
            max_provider_id=snap.max_provider_id,
        )
        for uuid in providers:
            id_ = snap.provider_ids.get(uuid)
            if id_ is not None:
                out.provider_roots[uuid] = snap.root_of(id_)
        sharing = snap.index.sharing
        out.sharing.ids = list(sharing)
        for provider in sharing:
            out.sharing.traits.update(snap.traits.get(provider, EMPTY))
        return out

    # -- existence checks ---------------------------------------------------------------

    def _anchor_ok(self, anchor: int, anchors: AnchorFilter) -> bool:
        traits = self.snap.traits.get(anchor, EMPTY)
        return all(trait in traits for trait in anchors.required) and not any(
            trait in traits for trait in anchors.forbidden
        )

    async def any_root_matches(self, anchors: AnchorFilter) -> bool:
        return any(
            self._anchor_ok(id_, anchors)
            for id_, info in self.snap.providers.items()
            if info[1] is None
        )

    def _in_every(self, provider: int, member_of: Sequence[Sequence[int]]) -> bool:
        mine = self.snap.aggregates.get(provider, EMPTY)
        return all(not mine.isdisjoint(any_of) for any_of in member_of)

    def _members(self, any_of: Iterable[int]) -> set[int]:
        by_aggregate = self.snap.index.by_aggregate
        return {p for aggregate in any_of for p in by_aggregate.get(aggregate, EMPTY)}

    def _in_aggregates(
        self, member_of: Sequence[Sequence[int]], window: Window, fewer_than: int
    ) -> list[int] | None:
        """Every provider that may be in all of ``member_of`` (by its own or its root's
        aggregates), in (root, id) order within ``window``, as a class index gives them;
        None when they are not ``fewer_than`` (left unsorted: the class drives)."""
        snap = self.snap
        found = min((self._members(any_of) for any_of in member_of), key=len)
        for provider in list(found):
            found.update(snap.index.trees.get(provider, ()))  # a root: its whole tree
        if len(found) >= fewer_than:
            return None
        ordered = sorted((snap.root_of(provider), provider) for provider in found)
        return [provider for root, provider in ordered if self._in_window(root, window)]

    async def any_provider_in_aggregates(self, member_of: list[list[int]]) -> bool:
        if not member_of:
            return bool(self.snap.providers)
        return any(self._in_every(p, member_of) for p in self._members(member_of[0]))

    # -- usable pairs ---------------------------------------------------------------------

    def _class_bits(self, provider: int, amounts: Sequence[tuple[int, int]]) -> int:
        inventory = self.snap.inventories.get(provider)
        if inventory is None:
            return 0
        usage = self.snap.usages.get(provider) or {}
        bits = 0
        for k, (rc, amount) in enumerate(amounts):
            row = inventory.get(rc)
            if row is None:
                continue
            total, reserved, min_unit, max_unit, step, ratio = row
            if (
                usage.get(rc, 0) + amount <= (total - reserved) * ratio
                and min_unit <= amount <= max_unit
                and amount % step == 0
            ):
                bits |= 1 << k
        return bits

    def _own_ok(self, provider: int, group: GroupQuery, required: Sequence[Sequence[int]]) -> bool:
        traits = self.snap.traits.get(provider, EMPTY)
        if any(traits.isdisjoint(any_of) for any_of in required):
            return False
        if group.forbidden and not traits.isdisjoint(group.forbidden):
            return False
        return not (
            group.forbidden_aggs
            and not self.snap.aggregates.get(provider, EMPTY).isdisjoint(group.forbidden_aggs)
        )

    def _sharing_anchors(self, provider: int) -> set[int]:
        snap = self.snap
        return {
            snap.root_of(member)
            for member in self._members(snap.aggregates.get(provider, EMPTY))
        }

    @staticmethod
    def _in_window(anchor: int, window: Window) -> bool:
        return window is None or window[0] < anchor <= window[1]

    def _unsuffixed(
        self,
        position: int,
        group: GroupQuery,
        anchors: AnchorFilter,
        window: Window,
        sharing: Sharing,
        needs: tuple[int, ...],
        only: set[int] | None = None,
    ) -> list[GroupRow]:
        """``only``: the anchors worth rows (None: all of them)."""
        snap = self.snap
        out: list[GroupRow] = []
        if not group.amounts:
            return out  # class bits would be null: nothing usable
        single = len(group.amounts) == 1
        full = (1 << len(group.required)) - 1
        own_required = group.required if single else ()
        need_sets = [group.required[j] for j in needs]
        judged: dict[int, bool] = {}  # anchor -> passes; anchors are judged once
        aggregates = snap.aggregates

        def trait_bits(provider: int) -> int:
            if single:
                return full
            traits = snap.traits.get(provider, EMPTY)
            return sum(
                1 << j for j, any_of in enumerate(group.required) if not traits.isdisjoint(any_of)
            )

        need_frozen = [frozenset(any_of) for any_of in need_sets]
        trees, traits_by_provider = snap.index.trees, snap.traits
        root_filter = bool(anchors)

        def anchor_ok(anchor: int) -> bool:
            verdict = judged.get(anchor)
            if verdict is None:
                verdict = not (
                    group.forbidden_aggs
                    and not aggregates.get(anchor, EMPTY).isdisjoint(group.forbidden_aggs)
                )
                for any_of in need_frozen:
                    if not verdict:
                        break
                    # Some provider of the anchor's tree has one of the traits.
                    verdict = False
                    for member in trees.get(anchor, ()):
                        if not traits_by_provider.get(member, EMPTY).isdisjoint(any_of):
                            verdict = True
                            break
                if verdict and root_filter:
                    verdict = self._anchor_ok(anchor, anchors)
                judged[anchor] = verdict
            return verdict

        by_class = snap.index.by_class
        indexes = [by_class.get(rc) for rc, _ in group.amounts]
        providers: Collection[int]
        if len(indexes) == 1:
            providers = indexes[0].in_window(window) if indexes[0] is not None else ()
        else:
            union: set[int] = set()
            for index in indexes:
                if index is not None:
                    union.update(index.in_window(window))
            providers = union
        if group.member_of:  # a few aggregates' providers drive better than a class
            narrow = self._in_aggregates(group.member_of, window, fewer_than=len(providers))
            if narrow is not None:
                providers = narrow
        # The hot loop (every provider of the classes): locals, no calls per check.
        infos = snap.providers
        traits_of = snap.traits.get
        aggregates_of = aggregates.get
        inventories_of = snap.inventories.get
        usages_of = snap.usages.get
        in_tree, forbidden_aggs = group.in_tree_root, group.forbidden_aggs
        member_sets = [frozenset(any_of) for any_of in group.member_of]
        forbidden = frozenset(group.forbidden)
        own_sets = [frozenset(any_of) for any_of in own_required]
        bit_sets = [(1 << j, frozenset(any_of)) for j, any_of in enumerate(group.required)]
        wanted = [(1 << k, rc, amount) for k, (rc, amount) in enumerate(group.amounts)]
        no_usage: dict[int, int] = {}
        add = out.append  # each provider once: no duplicates
        for provider in providers:
            root = infos[provider][2]
            if in_tree is not None and root != in_tree:
                continue
            if only is not None and root not in only:
                continue
            if member_sets:
                mine = aggregates_of(provider, EMPTY)
                member = True
                for any_of in member_sets:
                    if mine.isdisjoint(any_of):
                        # A provider's tree is in an aggregate when its root is.
                        theirs = aggregates_of(root, EMPTY)
                        member = not any(theirs.isdisjoint(sets) for sets in member_sets)
                        break
                if not member:
                    continue
            traits = traits_of(provider, EMPTY)
            lacking = False
            for any_of in own_sets:
                if traits.isdisjoint(any_of):
                    lacking = True
                    break
            if lacking or (forbidden and not traits.isdisjoint(forbidden)):
                continue
            verdict = judged.get(root)
            if not (anchor_ok(root) if verdict is None else verdict):
                continue
            if forbidden_aggs and not aggregates_of(provider, EMPTY).isdisjoint(forbidden_aggs):
                continue
            inventory = inventories_of(provider)
            if inventory is None:
                continue
            usage = usages_of(provider) or no_usage
            classes = 0
            for bit, rc, amount in wanted:
                row = inventory.get(rc)
                if row is None:
                    continue
                total, reserved, min_unit, max_unit, step, ratio = row
                if (
                    usage.get(rc, 0) + amount <= (total - reserved) * ratio
                    and min_unit <= amount <= max_unit
                    and amount % step == 0
                ):
                    classes |= bit
            if classes:
                if single:
                    bits = full
                else:
                    bits = 0
                    for bit, any_of in bit_sets:
                        if not traits.isdisjoint(any_of):
                            bits |= bit
                add((position, provider, root, root, classes, bits))
        if sharing.ids and group.in_tree_root is None:
            # A sharing provider may serve its own tree too: rows as a set from here.
            seen = set(out)
            for provider in sharing.ids:
                if group.member_of and not self._in_every(provider, group.member_of):
                    continue
                if not self._own_ok(provider, group, own_required):
                    continue
                classes = self._class_bits(provider, group.amounts)
                if not classes:
                    continue
                root, bits = snap.root_of(provider), trait_bits(provider)
                for anchor in self._sharing_anchors(provider):
                    if only is not None and anchor not in only:
                        continue
                    if self._in_window(anchor, window) and anchor_ok(anchor):
                        row = (position, provider, root, anchor, classes, bits)
                        if row not in seen:
                            seen.add(row)
                            out.append(row)
        return out

    def _suffixed(
        self,
        position: int,
        group: GroupQuery,
        anchors: AnchorFilter,
        window: Window,
        sharing: Sharing,
    ) -> list[GroupRow]:
        snap = self.snap
        index = snap.index
        drive: Iterable[int]
        if group.amounts:
            by_class = index.by_class.get(group.amounts[0][0])
            drive = by_class.in_window(window) if by_class is not None else ()
            if group.required and drive:
                # A rare required trait (CUSTOM_FOO on one NUMA node of each tree)
                # drives better than a class every compute node has; the window is
                # checked on each provider's root below.
                having = {p for t in group.required[0] for p in index.by_trait.get(t, EMPTY)}
                if len(having) < len(drive):
                    drive = having
        elif group.required:
            drive = {p for t in group.required[0] for p in index.by_trait.get(t, EMPTY)}
        else:
            drive = self._members(group.member_of[0])
        all_classes = (1 << len(group.amounts)) - 1

        def ok(provider: int, own_checked: bool = False) -> bool:
            if group.amounts and group.in_tree_root is not None:
                if snap.root_of(provider) != group.in_tree_root:
                    return False
            if group.member_of and not self._in_every(provider, group.member_of):
                return False
            if not own_checked and not self._own_ok(provider, group, group.required):
                return False
            if group.forbidden_aggs and not snap.aggregates.get(provider, EMPTY).isdisjoint(
                group.forbidden_aggs
            ):
                return False
            return self._class_bits(provider, group.amounts) == all_classes

        out: list[GroupRow] = []
        # The hot loop: the provider's own traits first (they rule most out), each
        # root judged once, capacity last; what ``ok`` checks, inlined (locals, no
        # calls per check). Each provider once: no duplicates.
        infos, traits_of = snap.providers, snap.traits.get
        aggregates_of, inventories_of, usages_of = (
            snap.aggregates.get, snap.inventories.get, snap.usages.get
        )
        required = [frozenset(any_of) for any_of in group.required]
        forbidden = frozenset(group.forbidden)
        member_sets = [frozenset(any_of) for any_of in group.member_of]
        forbidden_aggs = frozenset(group.forbidden_aggs)
        in_tree = group.in_tree_root if group.amounts else None
        wanted = group.amounts
        no_usage: dict[int, int] = {}
        judged: dict[int, bool] = {}
        for provider in drive:
            traits = traits_of(provider, EMPTY)
            if forbidden and not traits.isdisjoint(forbidden):
                continue
            for any_of in required:
                if traits.isdisjoint(any_of):
                    break
            else:
                root = infos[provider][2]
                if window is not None and not window[0] < root <= window[1]:
                    continue
                if in_tree is not None and root != in_tree:
                    continue
                verdict = judged.get(root)
                if verdict is None:
                    verdict = judged[root] = self._anchor_ok(root, anchors)
                if not verdict:
                    continue
                if member_sets or forbidden_aggs:
                    mine = aggregates_of(provider, EMPTY)
                    if any(mine.isdisjoint(any_of) for any_of in member_sets):
                        continue
                    if forbidden_aggs and not mine.isdisjoint(forbidden_aggs):
                        continue
                if wanted:
                    inventory = inventories_of(provider)
                    if inventory is None:
                        continue
                    usage = usages_of(provider) or no_usage
                    fits = True
                    for rc, amount in wanted:
                        stock = inventory.get(rc)
                        if stock is None:
                            fits = False
                            break
                        total, reserved, min_unit, max_unit, step, ratio = stock
                        if not (
                            usage.get(rc, 0) + amount <= (total - reserved) * ratio
                            and min_unit <= amount <= max_unit
                            and amount % step == 0
                        ):
                            fits = False
                            break
                    if not fits:
                        continue
                out.append((position, provider, root, root, None, None))
        if sharing.ids:
            # A sharing provider may serve its own tree too: rows as a set from here.
            seen = set(out)
            for provider in sharing.ids:
                if not ok(provider):
                    continue
                root = snap.root_of(provider)
                for anchor in self._sharing_anchors(provider):
                    if self._in_window(anchor, window) and self._anchor_ok(anchor, anchors):
                        row = (position, provider, root, anchor, None, None)
                        if row not in seen:
                            seen.add(row)
                            out.append(row)
        return out

    async def group_rows(
        self,
        groups: Sequence[GroupQuery],
        anchors: AnchorFilter,
        window: Window,
        sharing: Sharing,
    ) -> Sequence[GroupRow]:
        # The one-provider groups first: only anchors every one of them can serve
        # can make a candidate (window.fetch keeps those), so the unsuffixed group,
        # often the one with the most usable providers (DISK_GB on every compute
        # node), is only looked at in those trees. Rows of other anchors would be
        # dropped by the caller anyway.
        per_group: list[list[GroupRow]] = [[] for _ in groups]
        common: set[int] | None = None
        for position, group in enumerate(groups):
            if group.same_provider and not (
                group.resourceless and not (group.required or group.member_of)
            ):
                found = self._suffixed(position, group, anchors, window, sharing)
                per_group[position] = found
                served = {row[3] for row in found}
                common = served if common is None else common & served
        rows: list[GroupRow] = []
        for position, group in enumerate(groups):
            if group.resourceless and not (group.required or group.member_of):
                continue
            if group.same_provider:
                rows.extend(per_group[position])
                continue
            if common is not None and not common:
                continue
            needs: tuple[int, ...] = ()
            if len(group.amounts) > 1:
                needs = tuple(
                    j
                    for j, ids in enumerate(group.required)
                    if not sharing.traits.intersection(ids)
                )
            rows.extend(
                self._unsuffixed(position, group, anchors, window, sharing, needs, common)
            )
        return rows

    # -- lookups for combination and summaries --------------------------------------------

    async def room_left(
        self, provider_ids: Iterable[int], rc_ids: Sequence[int]
    ) -> dict[tuple[int, int], int]:
        snap = self.snap
        out: dict[tuple[int, int], int] = {}
        for provider in provider_ids:
            inventory = snap.inventories.get(provider)
            if inventory is None:
                continue
            usage = snap.usages.get(provider) or {}
            for rc in rc_ids:
                row = inventory.get(rc)
                if row is not None:
                    total, reserved, _, max_unit, _, ratio = row
                    capacity = int((total - reserved) * ratio)
                    out[(provider, rc)] = min(capacity - usage.get(rc, 0), max_unit)
        return out

    async def parents_in_trees(self, root_ids: Iterable[int]) -> dict[int, int | None]:
        snap = self.snap
        trees = snap.index.trees
        return {
            member: snap.providers[member][1]
            for root in root_ids
            for member in trees.get(root, ())
        }

    async def summary_rows(
        self,
        ids: Iterable[int],
        *,
        whole_trees: bool,
        with_traits: bool = True,
        rc_ids: Sequence[int] | None = None,
    ) -> SummaryRows:
        return snapshot_summary_rows(
            self.snap, ids, whole_trees=whole_trees, with_traits=with_traits, rc_ids=rc_ids
        )

    async def provider_uuids(self, ids: Iterable[int]) -> dict[int, str]:
        providers = self.snap.providers
        return {id_: providers[id_][0] for id_ in ids if id_ in providers}
