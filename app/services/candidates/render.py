"""The response body of ``GET /allocation_candidates`` at the request's microversion.

It lives with the service rather than next to the router because it reads the
search result's internal form (provider and class *ids*, with the maps that
turn them into uuids and names): that form stays private to this package, and
the router only hands the finished body to the HTTP layer. It is pure (no
HTTP, no database), so it runs outside the read transaction, and off the
event loop for large answers (see :func:`app.services.candidates.find`).

Plain dicts serialised by orjson: writing the JSON text directly in Python
(``orjson.Fragment`` of f-strings) was measured at 2.3x the CPU of this.
"""

from typing import Any, NamedTuple

from app.db.repositories.candidates.snapshot import on_providers_gone
from app.interning import Interned
from app.microversion import (
    ALL_CLASSES_IN_SUMMARIES,
    ALLOCATIONS_DICT_FORM,
    CANDIDATE_MAPPINGS,
    CANDIDATES_REQUIRED_TRAITS,
    NESTED_CANDIDATES,
)
from app.services.candidates.request import CandidateRequest
from app.services.candidates.search import SearchResult


def _in_query_order(
    by_provider: dict[str, dict[str, int]],
    mappings: tuple[frozenset[int], ...],
    in_query_order: list[int],
    uuids: dict[int, str],
) -> dict[str, dict[str, int]]:
    """``by_provider`` keyed first by the providers of the earliest group in the query."""
    rank: dict[str, int] = {}
    for position, index in enumerate(in_query_order):
        for provider in mappings[index]:
            rank.setdefault(uuids[provider], position)
    last = len(in_query_order)
    ordered = sorted(by_provider, key=lambda uuid: rank.get(uuid, last))
    return {uuid: by_provider[uuid] for uuid in ordered}


def _mappings(
    mapped: tuple[frozenset[int], ...],
    in_query_order: list[int],
    suffixes: list[str],
    uuids: dict[int, str],
) -> dict[str, list[str]]:
    """Each group's providers (uuids, sorted), in the query's group order."""
    out = {}
    for index in in_query_order:
        providers = mapped[index]
        if len(providers) == 1:
            out[suffixes[index]] = [uuids[provider] for provider in providers]
        else:
            out[suffixes[index]] = sorted(uuids[provider] for provider in providers)
    return out


def _allocation_requests(request: CandidateRequest, result: SearchResult) -> list[Any]:
    uuids = result.uuids
    names = result.class_names
    dict_form = request.version >= ALLOCATIONS_DICT_FORM
    mappings = request.version >= CANDIDATE_MAPPINGS
    suffixes = [group.suffix for group in result.groups]
    # The search puts the unsuffixed group first; the reference keys allocations
    # and mappings in the query's group order (error texts echo bodies built from them).
    in_query_order = sorted(range(len(suffixes)), key=lambda i: result.groups[i].index)
    reorder = in_query_order != list(range(len(suffixes)))
    body: dict[str, Any]
    out: list[Any] = []
    append = out.append
    # With one group, a candidate of one provider allocates the group's amounts
    # there: every such candidate shares one resources object (fewer objects to build).
    shared: dict[str, Any] | None = None
    suffix = suffixes[0] if suffixes else ""
    for candidate in result.candidates:
        if len(candidate.mappings) == 1 and len(candidate.mappings[0]) == 1:
            (provider,) = candidate.mappings[0]
            uuid = uuids[provider]
            if shared is None:
                shared = {names[rc]: amount for (_, rc), amount in candidate.amounts.items()}
            if dict_form:
                body = {"allocations": {uuid: {"resources": shared}}}
                if mappings:
                    body["mappings"] = {suffix: [uuid]}
            else:
                body = {
                    "allocations": [{"resource_provider": {"uuid": uuid}, "resources": shared}]
                }
            append(body)
            continue
        if dict_form and not reorder:
            # The common nested case, built in one pass (no intermediate maps).
            allocations: dict[str, dict[str, dict[str, int]]] = {}
            for (provider, rc), amount in candidate.amounts.items():
                uuid = uuids[provider]
                entry = allocations.get(uuid)
                if entry is None:
                    allocations[uuid] = {"resources": {names[rc]: amount}}
                else:
                    entry["resources"][names[rc]] = amount
            body = {"allocations": allocations}
            if mappings:
                body["mappings"] = _mappings(candidate.mappings, in_query_order, suffixes, uuids)
            append(body)
            continue
        by_provider: dict[str, dict[str, int]] = {}
        for (provider, rc), amount in candidate.amounts.items():
            uuid = uuids[provider]
            resources = by_provider.get(uuid)
            if resources is None:
                by_provider[uuid] = {names[rc]: amount}
            else:
                resources[names[rc]] = amount
        if reorder:
            by_provider = _in_query_order(by_provider, candidate.mappings, in_query_order, uuids)
        if dict_form:
            body = {
                "allocations": {
                    uuid: {"resources": resources} for uuid, resources in by_provider.items()
                }
            }
            if mappings:
                body["mappings"] = _mappings(candidate.mappings, in_query_order, suffixes, uuids)
        else:
            body = {
                "allocations": [
                    {"resource_provider": {"uuid": uuid}, "resources": resources}
                    for uuid, resources in by_provider.items()
                ]
            }
        append(body)
    return out


# provider id -> (summary row, inventory rows, trait names, variant, class names, summary).
# The snapshot source hands out the same row objects while a provider is unchanged
# (:mod:`app.db.repositories.candidates.memory`), so an identical summary is reused
# rather than rebuilt; rows built afresh (the SQL source) never match.
_SUMMARIES: dict[int, tuple[Any, Any, Any, Any, Any, dict[str, Any]]] = {}
# root id -> (tree rows, class names, variant, uuid -> summary): one tree's summaries,
# kept while the source hands out the same tree rows (``SummaryRows.trees``).
_TREE_SUMMARIES: dict[int, tuple[Any, Any, Any, dict[str, Any]]] = {}


def _forget(providers: set[int]) -> None:
    for provider in providers:  # a root's id is also its tree's key
        _SUMMARIES.pop(provider, None)
        _TREE_SUMMARIES.pop(provider, None)


on_providers_gone(_forget)


def _provider_summaries(request: CandidateRequest, result: SearchResult) -> dict[str, Any]:
    rows = result.summaries
    names = result.class_names
    all_classes = request.version >= ALL_CLASSES_IN_SUMMARIES
    requested = request.requested_classes
    with_traits = request.version >= CANDIDATES_REQUIRED_TRAITS
    nested = request.version >= NESTED_CANDIDATES
    variant = (True, with_traits, nested) if all_classes else (requested, with_traits, nested)
    shape = _Shape(names, all_classes, requested, with_traits, nested, variant, rows.providers)
    if rows.trees is None:
        out: dict[str, Any] = {}
        _summarize(shape, sorted(rows.providers), rows.inventories, rows.traits, out)
        return out
    # Whole trees, each a range of ids: a tree's summaries are kept while the
    # source hands out the same rows for it (in id order, as above).
    out = {}
    singles: list[int] = []  # a run of one-provider trees: per-provider summaries only
    for root, part in rows.trees:
        if part is None:
            singles.append(root)
            continue
        if singles:
            _summarize(shape, singles, rows.inventories, rows.traits, out)
            singles = []
        cached = _TREE_SUMMARIES.get(root)
        if (
            cached is not None
            and cached[0] is part
            and cached[1] is names
            and cached[2] == variant
        ):
            out.update(cached[3])
            continue
        built: dict[str, Any] = {}
        _summarize(shape, sorted(part.providers), part.inventories, part.traits, built)
        _TREE_SUMMARIES[root] = (part, names, variant, built)
        out.update(built)
    if singles:
        _summarize(shape, singles, rows.inventories, rows.traits, out)
    return out


class _Shape(NamedTuple):
    names: dict[int, str]
    all_classes: bool
    requested: Any
    with_traits: bool
    nested: bool
    variant: tuple[Any, bool, bool]
    providers: dict[int, tuple[str, int | None, int]]  # every summarized provider


def _summarize(
    shape: _Shape,
    ids: list[int],
    inventories: dict[int, list[tuple[int, int, int]]],
    traits_of: dict[int, list[str]],
    out: dict[str, Any],
) -> None:
    """The summaries of ``ids`` into ``out``, reusing those built before."""
    names, all_classes, requested, with_traits, nested, variant, providers = shape
    for provider in ids:
        info = providers[provider]
        listed = inventories.get(provider)
        traits = traits_of.get(provider) if with_traits else None
        cached = _SUMMARIES.get(provider)
        if (
            cached is not None
            and cached[0] is info
            and cached[1] is listed
            and cached[2] is traits
            and cached[4] is names
            and cached[3] == variant
        ):
            out[info[0]] = cached[5]
            continue
        uuid, parent, root = info
        shown = tuple(
            (names[rc], capacity, used)
            for rc, capacity, used in listed or ()
            if all_classes or names[rc] in requested
        )
        summary: dict[str, Any] = {"resources": _resources(shown)}
        if with_traits:
            summary["traits"] = traits if traits is not None else []
        if nested:
            summary["parent_provider_uuid"] = providers[parent][0] if parent is not None else None
            summary["root_provider_uuid"] = providers[root][0]
        out[uuid] = summary
        _SUMMARIES[provider] = (info, listed, traits, variant, names, summary)


# Equal resources objects of summaries are one object (read-only once built: they
# are only serialised): hosts of one hardware model, idle or equally loaded, share
# theirs.
_RESOURCES: Interned[tuple[tuple[str, int, int], ...], dict[str, dict[str, int]]] = Interned()
_AMOUNTS: Interned[tuple[int, int], dict[str, int]] = Interned()


def _resources(shown: tuple[tuple[str, int, int], ...]) -> dict[str, dict[str, int]]:
    """The one resources object for these (class name, capacity, used)."""
    return _RESOURCES.get(shown, lambda: {
        name: _amounts(capacity, used) for name, capacity, used in shown
    })


def _amounts(capacity: int, used: int) -> dict[str, int]:
    return _AMOUNTS.get((capacity, used), lambda: {"capacity": capacity, "used": used})


def render_body(request: CandidateRequest, result: SearchResult) -> dict[str, Any]:
    return {
        "allocation_requests": _allocation_requests(request, result),
        "provider_summaries": _provider_summaries(request, result),
    }


def render(request: CandidateRequest, result: SearchResult) -> dict[str, Any]:
    """The body (built already when :func:`app.services.candidates.find` did it off the loop)."""
    if result.body is not None:
        return result.body
    return render_body(request, result)
