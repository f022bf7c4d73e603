"""The response body of ``GET /allocation_candidates`` at the request's microversion.

It lives with the service rather than next to the router because it reads the
search result's internal form (provider and class *ids*, with the maps that
turn them into uuids and names): that form stays private to this package, and
the router only hands the finished body to the HTTP layer. It is pure (no
HTTP, no database), so it runs outside the read transaction, and off the
event loop for large answers (see :func:`app.services.candidates.find`).

The two big members are written as JSON text directly (``orjson.Fragment``):
every uuid, class name and suffix is encoded once per response instead of
once per candidate, and no dict per candidate and provider is built only to
be serialised. That halves the Python time of a 1,000-candidate answer.
"""

from typing import Any

import orjson

from app.microversion import (
    ALL_CLASSES_IN_SUMMARIES,
    ALLOCATIONS_DICT_FORM,
    CANDIDATE_MAPPINGS,
    CANDIDATES_REQUIRED_TRAITS,
    NESTED_CANDIDATES,
)
from app.services.candidates.request import CandidateRequest
from app.services.candidates.search import SearchResult


def _quoted(values: dict[int, str]) -> dict[int, str]:
    """Each value as a JSON string literal."""
    return {key: orjson.dumps(value).decode() for key, value in values.items()}


def _allocation_requests(request: CandidateRequest, result: SearchResult) -> str:
    uuids = _quoted(result.uuids)
    names = _quoted(result.class_names)
    dict_form = request.version >= ALLOCATIONS_DICT_FORM
    mappings = request.version >= CANDIDATE_MAPPINGS
    suffixes = [orjson.dumps(group.suffix).decode() for group in result.groups]
    by_uuid = result.uuids.__getitem__
    out: list[str] = []
    append = out.append
    for candidate in result.candidates:
        by_provider: dict[int, list[str]] = {}
        for (provider, rc), amount in candidate.amounts.items():
            piece = f"{names[rc]}:{amount}"
            resources = by_provider.get(provider)
            if resources is None:
                by_provider[provider] = [piece]
            else:
                resources.append(piece)
        if dict_form:
            allocations = ",".join(
                f'{uuids[provider]}:{{"resources":{{{",".join(pieces)}}}}}'
                for provider, pieces in by_provider.items()
            )
            if mappings:
                groups = ",".join(
                    f"{suffix}:[{','.join(uuids[p] for p in sorted(providers, key=by_uuid))}]"
                    for suffix, providers in zip(suffixes, candidate.mappings, strict=True)
                )
                append(f'{{"allocations":{{{allocations}}},"mappings":{{{groups}}}}}')
            else:
                append(f'{{"allocations":{{{allocations}}}}}')
        else:
            allocations = ",".join(
                f'{{"resource_provider":{{"uuid":{uuids[provider]}}},'
                f'"resources":{{{",".join(pieces)}}}}}'
                for provider, pieces in by_provider.items()
            )
            append(f'{{"allocations":[{allocations}]}}')
    return f"[{','.join(out)}]"


def _provider_summaries(request: CandidateRequest, result: SearchResult) -> str:
    rows = result.summaries
    names = result.class_names
    all_classes = request.version >= ALL_CLASSES_IN_SUMMARIES
    requested = request.requested_classes
    with_traits = request.version >= CANDIDATES_REQUIRED_TRAITS
    nested = request.version >= NESTED_CANDIDATES
    providers = rows.providers
    uuids = {provider: orjson.dumps(info[0]).decode() for provider, info in providers.items()}
    quoted_names = _quoted(names)
    out: list[str] = []
    for provider in sorted(providers):
        _, parent, root = providers[provider]
        resources = ",".join(
            f'{quoted_names[rc]}:{{"capacity":{capacity},"used":{used}}}'
            for rc, capacity, used in rows.inventories.get(provider, ())
            if all_classes or names[rc] in requested
        )
        summary = f'"resources":{{{resources}}}'
        if with_traits:
            summary += f',"traits":{orjson.dumps(rows.traits.get(provider, [])).decode()}'
        if nested:
            parent_uuid = uuids[parent] if parent is not None else "null"
            summary += f',"parent_provider_uuid":{parent_uuid},"root_provider_uuid":{uuids[root]}'
        out.append(f"{uuids[provider]}:{{{summary}}}")
    return f"{{{','.join(out)}}}"


def render_body(request: CandidateRequest, result: SearchResult) -> dict[str, Any]:
    return {
        "allocation_requests": orjson.Fragment(_allocation_requests(request, result)),
        "provider_summaries": orjson.Fragment(_provider_summaries(request, result)),
    }


def render(request: CandidateRequest, result: SearchResult) -> dict[str, Any]:
    """The body (built already when :func:`app.services.candidates.find` did it off the loop)."""
    if result.body is not None:
        return result.body
    return render_body(request, result)
