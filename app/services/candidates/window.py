"""One window of anchors: the usable pairs of every group by anchor, and its candidates.

Pure Python once the rows are fetched: :class:`Collector` may run in a worker
thread (large windows), the rest of the search stays on the event loop.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from app.db.repositories import candidates as repo
from app.db.repositories.candidates import AnchorFilter, GroupQuery
from app.db.repositories.candidates.source import CandidateSource
from app.services.candidates.combine import Budget, Candidate, Combiner, Solution

# Above this many combination steps (estimated) a window is combined in a
# worker thread, so the event loop keeps serving other requests meanwhile.
INLINE_STEPS = 2_000


@dataclass
class Window:
    """Usable pairs of every group, by anchor, for one window of anchors."""

    anchors: list[int] = field(default_factory=list)
    # unsuffixed: anchor -> per class index, (provider, trait bits)
    entries: dict[int, list[list[tuple[int, int]]]] = field(default_factory=dict)
    # suffixed groups (by position in plan.groups): anchor -> solutions
    solutions: dict[int, dict[int, list[Solution]]] = field(default_factory=dict)
    roots: dict[int, int] = field(default_factory=dict)  # provider -> its root
    stacked_providers: set[int] = field(default_factory=set)
    # unsuffixed: anchors where some class has more than one provider to choose from
    several: set[int] = field(default_factory=set)


async def fetch(
    source: CandidateSource,
    anchors: AnchorFilter,
    sharing: repo.Sharing,
    groups: Sequence[GroupQuery],
    window: repo.Window,
    stacked: frozenset[int],
) -> Window:
    """Every group's usable pairs in the window (one query), arranged by anchor."""
    out = Window()
    suffixed: list[dict[int, list[Solution]]] = [defaultdict(list) for _ in groups]
    entries: dict[int, list[list[tuple[int, int]]]] = {}
    head = groups[0]
    width = len(head.amounts)
    stacked_mask = sum(1 << k for k, (rc, _) in enumerate(head.amounts) if rc in stacked)
    stacked_groups = {
        position
        for position, group in enumerate(groups)
        if group.same_provider and any(rc in stacked for rc, _ in group.amounts)
    }
    roots, several = out.roots, out.several
    head_single = head.same_provider
    rows = await source.group_rows(groups, anchors, window, sharing)
    for position, provider, root, anchor, classes, bits in rows:
        if position:
            roots[provider] = root
            suffixed[position][anchor].append(
                Combiner.provider_solution(provider, groups[position].amounts)
            )
            if position in stacked_groups:
                out.stacked_providers.add(provider)
        elif head_single:
            roots[provider] = root
            suffixed[0][anchor].append(Combiner.provider_solution(provider, head.amounts))
            if 0 in stacked_groups:
                out.stacked_providers.add(provider)
        elif classes:
            roots[provider] = root
            per_class = entries.get(anchor)
            option = (provider, bits or 0)
            if per_class is None:
                entries[anchor] = [[option] if classes >> k & 1 else [] for k in range(width)]
            else:
                for k in range(width):
                    if classes >> k & 1:
                        options = per_class[k]
                        if options:
                            several.add(anchor)
                        options.append(option)
            if classes & stacked_mask:
                out.stacked_providers.add(provider)
    common: set[int] | None = None
    for position, group in enumerate(groups):
        if group.same_provider:
            by_anchor = suffixed[position]
            for solutions in by_anchor.values():
                if len(solutions) > 1:
                    solutions.sort(key=lambda solution: solution.single or 0)
            out.solutions[position] = by_anchor
            usable = set(by_anchor)
        else:
            for anchor in several:
                for options in entries[anchor]:
                    if len(options) > 1:
                        options.sort()
            out.entries = {
                anchor: per_class for anchor, per_class in entries.items() if all(per_class)
            }
            usable = set(out.entries)
        common = usable if common is None else common & usable
        if not common:
            break
    out.anchors = sorted(common or ())
    return out


def first_solutions(
    group: GroupQuery, fetched: Window, anchor: int, budget: Budget
) -> Iterator[Solution]:
    if group.same_provider:
        return iter(fetched.solutions[0][anchor])
    full_mask = (1 << len(group.required)) - 1
    return Combiner.tree_solutions(fetched.entries[anchor], group.amounts, full_mask, budget)


def candidates_at(
    anchor: int, groups: Sequence[GroupQuery], fetched: Window, combiner: Combiner
) -> Iterable[Candidate]:
    head = groups[0]
    first = first_solutions(head, fetched, anchor, combiner.budget)
    others = [fetched.solutions[position][anchor] for position in range(1, len(groups))]
    return combiner.combine(first, others)



def providers_of(fetched: Window, groups: Sequence[GroupQuery], position: int) -> set[int]:
    """Every provider the fetched rows offer to one group."""
    if groups[position].same_provider:
        return {
            solution.single
            for solutions in fetched.solutions[position].values()
            for solution in solutions
            if solution.single is not None
        }
    return {
        provider
        for per_class in fetched.entries.values()
        for options in per_class
        for provider, _ in options
    }



def one_provider_per_tree(candidate: Candidate, roots: dict[int, int]) -> bool:
    """Below 1.29: no two providers of a request may share a tree."""
    providers = {provider for provider, _ in candidate.amounts}
    return len({roots[provider] for provider in providers}) == len(providers)



def estimated_steps(fetched: Window, groups: Sequence[GroupQuery]) -> int:
    """An upper bound of the combination steps of a window (stops counting past INLINE_STEPS)."""
    head = groups[0]
    if len(groups) == 1 and not head.same_provider and not fetched.several:
        return len(fetched.anchors)  # one solution per anchor
    total = 0
    for anchor in fetched.anchors:
        if head.same_provider:
            steps = len(fetched.solutions[0][anchor])
        else:
            steps = 1
            for options in fetched.entries[anchor]:
                steps *= len(options)
        for position in range(1, len(groups)):
            steps *= len(fetched.solutions[position][anchor])
        total += steps
        if total > INLINE_STEPS:
            break
    return total


@dataclass
class Collector:
    """The candidates kept so far, and when to stop (pure: may run in a worker thread)."""

    nested_aware: bool
    limit: int | None  # stop at this many candidates kept (``limit`` honoured early)
    max_candidates: int  # stop at this many generated (-1: no bound)
    roots: dict[int, int]
    found: list[Candidate] = field(default_factory=list)
    generated: int = 0

    def window(
        self, fetched: Window, groups: Sequence[GroupQuery], combiner: Combiner
    ) -> bool:
        """Add the window's candidates; True when there are enough."""
        roots, found = self.roots, self.found
        nested_aware, limit, max_candidates = self.nested_aware, self.limit, self.max_candidates
        head = groups[0]
        one_group = len(groups) == 1 and not head.same_provider
        full_mask = (1 << len(head.required)) - 1
        classes = head.amounts
        spend, finish = combiner.budget.spend, combiner.finish
        entries, several = fetched.entries, fetched.several
        bounded = combiner.budget.left >= 0
        for anchor in fetched.anchors:
            made: Iterable[Candidate]
            if one_group and anchor not in several:
                # The common case (e.g. flat compute nodes): one group, one choice per class.
                per_class = entries[anchor]
                if bounded:
                    spend()
                bits = 0
                amounts: dict[tuple[int, int], int] = {}
                providers = []
                for options, (rc, amount) in zip(per_class, classes, strict=True):
                    provider, provider_bits = options[0]
                    bits |= provider_bits
                    amounts[provider, rc] = amount
                    providers.append(provider)
                if bits & full_mask != full_mask:
                    continue
                candidate = finish(amounts, (frozenset(providers),))
                made = () if candidate is None else (candidate,)
            else:
                made = candidates_at(anchor, groups, fetched, combiner)
            for candidate in made:
                self.generated += 1
                if nested_aware or one_provider_per_tree(candidate, roots):
                    found.append(candidate)
                if 0 <= max_candidates <= self.generated or (
                    limit is not None and len(found) >= limit
                ):
                    return True
        return False
