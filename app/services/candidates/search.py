"""The candidate search: resolve names, fetch usable pairs per anchor window, combine.

Runs inside one read transaction (one snapshot). Anchors are processed in
ascending id order. When the response is bounded (``limit`` without
randomisation, or ``max_allocation_candidates``), anchors are fetched in
windows of ids that grow geometrically, and the search stops as soon as
enough candidates exist: the work and the memory then follow the size of the
answer, not the size of the cloud. Otherwise one pass covers every anchor.

A simple request costs three queries: names, usable pairs, summaries.
"""

import asyncio
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.db.repositories import candidates as repo
from app.db.repositories.candidates import AnchorFilter, GroupQuery, SummaryRows
from app.db.repositories.candidates.source import CandidateSource
from app.exceptions import CandidateUnknownResourceClass, CandidateUnknownTrait, InvalidInput
from app.microversion import ALL_CLASSES_IN_SUMMARIES, CANDIDATES_REQUIRED_TRAITS
from app.services.candidates.combine import Budget, Candidate, Combiner
from app.services.candidates.request import CandidateRequest, RequestGroup
from app.services.candidates.window import (
    INLINE_STEPS,
    Collector,
    estimated_steps,
    fetch,
    first_solutions,
    providers_of,
)

FIRST_WINDOW = 256


@dataclass
class SearchResult:
    groups: list[GroupQuery] = field(default_factory=list)  # unsuffixed group first
    candidates: list[Candidate] = field(default_factory=list)
    summaries: SummaryRows = field(default_factory=SummaryRows)
    uuids: dict[int, str] = field(default_factory=dict)
    class_names: dict[int, str] = field(default_factory=dict)
    # The rendered body, when it was built off the event loop (large answers).
    body: dict[str, Any] | None = None


class _Empty(Exception):
    """Nothing can match: the answer is an empty 200."""


# -- resolution and error precedence ----------------------------------------------------

async def _resolve(source: CandidateSource, request: CandidateRequest) -> repo.Resolved:
    trait_names = {*request.root_required, *request.root_forbidden}
    agg_uuids: set[str] = set()
    for group in request.groups:
        trait_names.update(group.trait_names)
        agg_uuids.update(*group.member_of, group.forbidden_aggs)
    return await source.resolve(
        traits=trait_names,
        aggregates=agg_uuids,
        providers={group.in_tree for group in request.groups if group.in_tree},
    )


def _no_such_traits(names: Sequence[str], known: dict[str, int]) -> InvalidInput | None:
    for name in names:
        if name not in known:
            return CandidateUnknownTrait(name=name)
    return None


def _group_query(index: int, group: RequestGroup, names: repo.Resolved) -> GroupQuery | None:
    """The group with ids; None when it can match nothing (unknown aggregates or tree)."""
    aggregates = names.aggregate_ids
    member_of = []
    for any_of in group.member_of:
        ids = sorted({aggregates[uuid] for uuid in any_of if uuid in aggregates})
        if not ids:
            return None
        member_of.append(ids)
    in_tree_root = None
    if group.in_tree is not None:
        if group.in_tree not in names.provider_roots:
            return None
        in_tree_root = names.provider_roots[group.in_tree]
    traits = names.trait_ids
    return GroupQuery(
        index=index,
        suffix=group.suffix,
        amounts=[(names.class_ids[name], amount) for name, amount in group.resources.items()],
        required=[sorted(traits[name] for name in any_of) for any_of in group.required],
        forbidden=sorted(traits[name] for name in group.forbidden),
        member_of=member_of,
        forbidden_aggs=sorted(
            aggregates[uuid] for uuid in group.forbidden_aggs if uuid in aggregates
        ),
        in_tree_root=in_tree_root,
    )


@dataclass
class _Plan:
    request: CandidateRequest
    groups: list[GroupQuery]
    anchors: AnchorFilter
    sharing: repo.Sharing
    max_candidates: int
    randomize: bool
    names: repo.Resolved
    budget: Budget = field(default_factory=Budget)

    @property
    def early_limit(self) -> int | None:
        """``limit``, when the first ``limit`` candidates are the answer."""
        # Randomised answers sample from all candidates; below 1.29 a limited
        # answer's summaries depend on every request (see ``_summary_providers``).
        if self.randomize or not self.request.nested_aware:
            return None
        return self.request.limit

    @property
    def bound(self) -> int | None:
        """How many candidates can be needed at most (None: all of them)."""
        bounds = []
        if self.early_limit is not None:
            bounds.append(self.early_limit)
        if self.max_candidates >= 0:
            bounds.append(max(self.max_candidates, 1))
        return min(bounds) if bounds else None


async def _plan(
    source: CandidateSource,
    request: CandidateRequest,
    max_candidates: int,
    randomize: bool,
    budget: Budget,
) -> _Plan:
    """Resolve every name, raising the reference's first error (or _Empty)."""
    names = await _resolve(source, request)
    traits = names.trait_ids
    error = _no_such_traits([*request.root_required, *request.root_forbidden], traits)
    if error is not None:
        raise error
    anchors = AnchorFilter(
        required=[traits[name] for name in request.root_required],
        forbidden=[traits[name] for name in request.root_forbidden],
    )
    plan = _Plan(request, [], anchors, names.sharing, max_candidates, randomize, names, budget)
    # The reference resolves group after group and stops at the first group that
    # can match nothing, so a later group's unknown name is then never reported.
    for index, group in enumerate(request.groups):
        unknown = next((name for name in group.resources if name not in names.class_ids), None)
        if unknown is not None:
            await _raise_unless_empty(source, plan, CandidateUnknownResourceClass(name=unknown))
        error = _no_such_traits(group.trait_names, traits)
        if error is not None:
            if group.member_of:
                ids = [
                    [names.aggregate_ids[uuid] for uuid in any_of if uuid in names.aggregate_ids]
                    for any_of in group.member_of
                ]
                if not all(ids) or not await source.any_provider_in_aggregates(ids):
                    raise _Empty()
            await _raise_unless_empty(source, plan, error)
        query = _group_query(index, group, names)
        if query is None:
            raise _Empty()
        plan.groups.append(query)
    return plan


async def _raise_unless_empty(source: CandidateSource, plan: _Plan, error: InvalidInput) -> None:
    """``error``, unless a group resolved before it (or the anchor filter) matches nothing."""
    if plan.anchors and not await source.any_root_matches(plan.anchors):
        raise _Empty()
    for group in plan.groups:
        if not await _group_has_solutions(source, plan, group):
            raise _Empty()
    raise error


async def _group_has_solutions(source: CandidateSource, plan: _Plan, group: GroupQuery) -> bool:
    fetched = await fetch(source, plan.anchors, plan.sharing, [group], None, frozenset())

    def any_solution() -> bool:
        for anchor in fetched.anchors:
            for _ in first_solutions(group, fetched, anchor, plan.budget):
                return True
        return False

    if estimated_steps(fetched, [group]) > INLINE_STEPS:
        return await asyncio.to_thread(any_solution)
    return any_solution()


# -- the search ------------------------------------------------------------------------

def _stacked_classes(groups: Sequence[GroupQuery]) -> frozenset[int]:
    """Classes requested by more than one group: their amounts can add up."""
    seen: set[int] = set()
    stacked: set[int] = set()
    for group in groups:
        for rc, _ in group.amounts:
            (stacked if rc in seen else seen).add(rc)
    return frozenset(stacked)


def _subtrees(request: CandidateRequest, groups: Sequence[GroupQuery]) -> list[frozenset[int]]:
    position = {group.suffix: index for index, group in enumerate(groups)}
    return [
        frozenset(position[suffix] for suffix in suffixes)
        for suffixes in request.same_subtrees
        if len(suffixes) > 1
    ]


async def search(
    source: CandidateSource,
    request: CandidateRequest,
    *,
    max_candidates: int = -1,
    randomize: bool = False,
    max_combinations: int = -1,
) -> SearchResult:
    """The candidates; ``max_combinations`` bounds the combination steps (-1: none)."""
    try:
        plan = await _plan(source, request, max_candidates, randomize, Budget(max_combinations))
    except _Empty:
        return SearchResult()
    # The unsuffixed group first: it is the one whose solutions are generated lazily.
    groups = sorted(plan.groups, key=lambda group: group.same_provider)
    everything, roots = await _generate(source, plan, groups)
    found = everything
    if request.limit is not None and len(found) > request.limit:
        found = random.sample(found, request.limit) if randomize else found[: request.limit]
    elif randomize:
        random.shuffle(found)
    return await _summarize(
        source,
        request,
        groups,
        found,
        roots,
        plan.names.class_names,
        _summary_providers(request, everything, found, roots),
    )


def _summary_providers(
    request: CandidateRequest,
    everything: list[Candidate],
    kept: list[Candidate],
    roots: dict[int, int],
) -> set[int]:
    """Providers to summarize (from 1.29, the summaries cover their whole trees).

    The providers of the returned requests; below 1.29, when ``limit`` dropped
    requests, the providers of *every* request found whose tree holds a
    provider of a kept request (the reference's order of filters).
    """
    providers = {provider for candidate in kept for provider, _ in candidate.amounts}
    if request.nested_aware or len(kept) == len(everything):
        return providers
    kept_roots = {roots[provider] for provider in providers}
    return {
        provider
        for candidate in everything
        for provider, _ in candidate.amounts
        if roots[provider] in kept_roots
    }


async def _generate(
    source: CandidateSource, plan: _Plan, groups: list[GroupQuery]
) -> tuple[list[Candidate], dict[int, int]]:
    """Candidates in anchor order, until there are enough; and each provider's root."""
    request = plan.request
    stacked = _stacked_classes(groups)
    combiner = Combiner(
        isolate=request.group_policy == "isolate",
        subtrees=_subtrees(request, groups),
        stacked_classes=stacked,
        dedupe=bool(plan.sharing.ids),
        budget=plan.budget,
    )
    in_subtrees = {index for groups_ in combiner.subtrees for index in groups_}
    roots: dict[int, int] = {}
    collect = Collector(request.nested_aware, plan.early_limit, plan.max_candidates, roots)
    for window in _windows(plan):
        fetched = await fetch(source, plan.anchors, plan.sharing, groups, window, stacked)
        if not fetched.anchors:
            continue
        roots.update(fetched.roots)
        if stacked:
            combiner.room.update(
                await source.room_left(fetched.stacked_providers, sorted(stacked))
            )
        if combiner.subtrees:
            tree_roots = {
                fetched.roots[provider]
                for position in in_subtrees
                for provider in providers_of(fetched, groups, position)
            }
            combiner.parents.update(await source.parents_in_trees(tree_roots))
        if estimated_steps(fetched, groups) > INLINE_STEPS:
            done = await asyncio.to_thread(collect.window, fetched, groups, combiner)
        else:
            done = collect.window(fetched, groups, combiner)
        if done:
            break
    return collect.found, roots


def _windows(plan: _Plan) -> Iterator[repo.Window]:
    """Every anchor at once, or growing windows of ids when the answer is bounded.

    Provider ids are dense, so a window of N ids holds at most N anchors (fewer
    where trees take several ids). The caller stops pulling when it has enough;
    growing by 4 keeps the number of queries low where matches are sparse.
    """
    bound = plan.bound
    if bound is None:
        yield None
        return
    after, size = 0, max(FIRST_WINDOW, 4 * bound)
    while after < plan.names.max_provider_id:
        yield (after, after + size)
        after, size = after + size, size * 4


async def _summarize(
    source: CandidateSource,
    request: CandidateRequest,
    groups: list[GroupQuery],
    found: list[Candidate],
    roots: dict[int, int],
    class_names: dict[int, str],
    contributors: set[int],
) -> SearchResult:
    result = SearchResult(groups=groups, candidates=found, class_names=class_names)
    if not found:
        return result
    with_traits = request.version >= CANDIDATES_REQUIRED_TRAITS
    rc_ids = None
    if request.version < ALL_CLASSES_IN_SUMMARIES:
        rc_ids = sorted({rc for group in groups for rc, _ in group.amounts})
    if request.nested_aware:
        summaries = await source.summary_rows(
            {roots[provider] for provider in contributors},
            whole_trees=True,
            with_traits=with_traits,
            rc_ids=rc_ids,
        )
    else:
        summaries = await source.summary_rows(
            contributors, whole_trees=False, with_traits=with_traits, rc_ids=rc_ids
        )
    result.summaries = summaries
    result.uuids = {id_: info[0] for id_, info in summaries.providers.items()}
    mapped = {
        provider
        for candidate in found
        for providers in candidate.mappings
        for provider in providers
    }
    missing = mapped - result.uuids.keys()
    if missing:
        result.uuids.update(await source.provider_uuids(missing))
    return result
