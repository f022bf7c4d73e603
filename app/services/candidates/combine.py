"""Combining group solutions into allocation candidates, one anchor at a time.

Pure Python over small inputs: the database already returned only the
(provider, anchor) pairs that can serve each group (see the repository). For
one anchor this module

1. builds the unsuffixed group's solutions: one provider per requested class
   (a provider may serve several classes), kept when the contributing
   providers together have a trait of every required any-of set;
2. takes one solution per group (a depth-first product that prunes partial
   combinations already breaking ``group_policy=isolate`` or the room left on
   a provider for classes several groups ask for);
3. applies ``same_subtree``, consolidates the amounts per (provider, class) and
   drops requests seen before (same allocations and same mappings).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import NamedTuple

from app.exceptions.candidates import CandidatesTooExpensive

# (provider id, resource class id) -> amount
Amounts = dict[tuple[int, int], int]


class Budget:
    """How many more combination steps one request may take (``-1``: no bound).

    One step is one partial combination looked at, kept or pruned, so the
    count bounds both the time and the candidates (memory) of a request; past
    it the request is refused rather than left to run for minutes.
    """

    __slots__ = ("left", "limit")

    def __init__(self, limit: int = -1) -> None:
        self.limit = limit
        self.left = limit if limit >= 0 else -1

    def spend(self, steps: int = 1) -> None:
        if self.left < 0:
            return
        self.left -= steps
        if self.left < 0:
            raise CandidatesTooExpensive(limit=self.limit)


class Solution(NamedTuple):
    """How one group is satisfied at one anchor (a tuple: built once per usable row)."""

    alloc: tuple[tuple[int, int, int], ...]  # (provider, class, amount)
    providers: frozenset[int]  # the group's mapping
    single: int | None = None  # the provider of a suffixed group


@dataclass(slots=True)
class Candidate:
    amounts: Amounts
    mappings: tuple[frozenset[int], ...]  # per group, in the search's group order


@dataclass
class Combiner:
    """Generates the candidates of one request, anchor by anchor, without duplicates."""

    isolate: bool = False
    # groups (indexes) of each ``same_subtree`` occurrence with more than one group
    subtrees: Sequence[frozenset[int]] = ()
    # (provider, class) -> most a single request may take, for classes asked by 2+ groups
    room: dict[tuple[int, int], int] = field(default_factory=dict)
    stacked_classes: frozenset[int] = frozenset()
    budget: Budget = field(default_factory=Budget)
    parents: dict[int, int | None] = field(default_factory=dict)
    # Without sharing providers every request belongs to one anchor, and one
    # anchor never yields the same request twice: nothing to de-duplicate.
    dedupe: bool = True
    seen: set[tuple[frozenset[tuple[tuple[int, int], int]], tuple[frozenset[int], ...]]] = (
        field(default_factory=set)
    )

    # -- unsuffixed group ---------------------------------------------------------

    @staticmethod
    def tree_solutions(
        entries: Sequence[Sequence[tuple[int, int]]],
        amounts: Sequence[tuple[int, int]],
        full_mask: int,
        budget: Budget,
    ) -> Iterator[Solution]:
        """Solutions of the unsuffixed group at one anchor.

        ``entries[i]`` lists (provider, trait bits) usable for the ``i``-th class
        of ``amounts``; traits only count on providers that contribute.
        """
        if all(len(options) == 1 for options in entries):
            # One choice per class: the common case of flat providers.
            budget.spend()
            bits = 0
            for options in entries:
                bits |= options[0][1]
            if bits & full_mask == full_mask:
                alloc = tuple(
                    (options[0][0], rc, amount)
                    for options, (rc, amount) in zip(entries, amounts, strict=True)
                )
                yield Solution(alloc, frozenset(provider for provider, _, _ in alloc))
            return
        spend = budget.spend
        for choice in product(*entries):
            spend()
            if full_mask:
                bits = 0
                for _, provider_bits in choice:
                    bits |= provider_bits
                if bits != full_mask:
                    continue
            alloc = tuple(
                (provider, rc, amount)
                for (provider, _), (rc, amount) in zip(choice, amounts, strict=True)
            )
            yield Solution(alloc, frozenset(provider for provider, _ in choice))

    @staticmethod
    def provider_solution(provider: int, amounts: Sequence[tuple[int, int]]) -> Solution:
        return Solution(
            tuple((provider, rc, amount) for rc, amount in amounts),
            frozenset((provider,)),
            provider,
        )

    # -- all groups -------------------------------------------------------------

    def combine(
        self, first: Iterator[Solution], others: Sequence[Sequence[Solution]]
    ) -> Iterator[Candidate]:
        """New candidates from one anchor: ``first`` group x every other group."""
        if not others:
            for head in first:
                candidate = self._finish(
                    {(provider, rc): amount for provider, rc, amount in head.alloc}, [head]
                )
                if candidate is not None:
                    yield candidate
            return
        budget = self.budget
        spend = budget.spend
        # Without isolate and stacked classes nothing prunes a partial combination
        # and no two groups allocate the same (provider, class): every head then
        # costs a known number of steps, and its combinations are a plain product.
        plain = not self.isolate and not self.stacked_classes
        steps, width = 1, 1
        for solutions in others:
            width *= len(solutions)
            steps += width
        for head in first:
            if plain and (budget.left < 0 or budget.left >= steps):
                spend(steps)
                if width:
                    yield from self._products(head, others)
                continue
            spend()
            amounts: Amounts = {}
            if not self._add(amounts, head):
                continue
            singles = [head.single] if head.single is not None else []
            yield from self._extend(amounts, [head], singles, others, 0)

    def _products(
        self, head: Solution, others: Sequence[Sequence[Solution]]
    ) -> Iterator[Candidate]:
        """``head`` with every combination of the other groups (no pruning possible)."""
        subtrees, keep = self.subtrees, self._keep
        for rest in product(*others):
            mappings = (head.providers, *[solution.providers for solution in rest])
            if subtrees and not self._fits(mappings):
                continue
            amounts = {(provider, rc): amount for provider, rc, amount in head.alloc}
            for solution in rest:
                for provider, rc, amount in solution.alloc:
                    amounts[provider, rc] = amount
            candidate = keep(amounts, mappings)
            if candidate is not None:
                yield candidate

    def _add(self, amounts: Amounts, solution: Solution) -> bool:
        """Add the solution's amounts; False when a stacked class runs out of room."""
        for provider, rc, amount in solution.alloc:
            key = (provider, rc)
            total = amounts.get(key, 0) + amount
            amounts[key] = total
            if rc in self.stacked_classes and total > self.room.get(key, 0):
                return False
        return True

    def _extend(
        self,
        amounts: Amounts,
        chosen: list[Solution],
        singles: list[int],
        others: Sequence[Sequence[Solution]],
        depth: int,
    ) -> Iterator[Candidate]:
        if depth == len(others):
            candidate = self._finish(amounts, chosen)
            if candidate is not None:
                yield candidate
            return
        spend = self.budget.spend
        for solution in others[depth]:
            spend()
            if self.isolate and solution.single is not None and solution.single in singles:
                continue
            grown = dict(amounts)
            if not self._add(grown, solution):
                continue
            chosen.append(solution)
            if solution.single is not None:
                singles.append(solution.single)
            yield from self._extend(grown, chosen, singles, others, depth + 1)
            chosen.pop()
            if solution.single is not None:
                singles.pop()

    def _finish(self, amounts: Amounts, chosen: list[Solution]) -> Candidate | None:
        return self.finish(amounts, tuple(solution.providers for solution in chosen))

    def finish(
        self, amounts: Amounts, mappings: tuple[frozenset[int], ...]
    ) -> Candidate | None:
        """The candidate, unless ``same_subtree`` fails or it was produced before."""
        if self.subtrees and not self._fits(mappings):
            return None
        return self._keep(amounts, mappings)

    def _fits(self, mappings: tuple[frozenset[int], ...]) -> bool:
        """Every ``same_subtree`` holds."""
        for groups in self.subtrees:
            members: set[int] = set()
            for index in groups:
                members |= mappings[index]
            if len(members) > 1 and not self._one_subtree(members):
                return False
        return True

    def _keep(
        self, amounts: Amounts, mappings: tuple[frozenset[int], ...]
    ) -> Candidate | None:
        """The candidate, unless it was produced before."""
        if self.dedupe:
            key = (frozenset(amounts.items()), mappings)
            if key in self.seen:
                return None
            self.seen.add(key)
        return Candidate(amounts, mappings)

    def _one_subtree(self, members: set[int]) -> bool:
        """Some member is an ancestor-or-self of every member."""
        # Members are few and trees shallow: walking up the parents beats
        # building ancestor sets.
        parents = self.parents
        for top in members:
            for member in members:
                node: int | None = member
                while node is not None and node != top:
                    node = parents.get(node)
                if node is None:
                    break
            else:
                return True
        return False
